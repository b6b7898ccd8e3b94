// The running (max, argmax) of a relevance column as one 64-bit key, so that
// partial results merge with a plain unsigned maximum (atomicMax on the GPU):
// the merge is then independent of the order in which tiles, splits and
// passes finish, and the kernels need no separate best/best_j pass.
//
// key(value, j) > key(other, other_j) exactly when better_match(value, j,
// other, other_j) (index_math.h, the contract's rule): the high word orders the
// values (+0 and -0 compare equal there, as they do as floats), the low word
// holds ~j so that among equal values the lowest j wins, and NaN maps to 0,
// below every real value, so it never wins.
#pragma once

#include <math.h>
#include <stdint.h>

#include "half_bits.h"
#include "host_device.h"

namespace ttsr_st {

// Monotone map of the float order onto uint32: larger floats, larger words.
TTSR_ST_HD uint32_t ordered_bits(float value) {
    if (value == 0.0f) return 0x80000000u;  // -0 equals +0, so they must share a word
    const uint32_t bits = float_bits(value);
    return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

TTSR_ST_HD float ordered_value(uint32_t ordered) {
    return bits_float((ordered & 0x80000000u) ? (ordered & 0x7fffffffu) : ~ordered);
}

TTSR_ST_HD unsigned long long match_key(float value, int j) {
    if (value != value) return 0ull;  // NaN
    return (static_cast<unsigned long long>(ordered_bits(value)) << 32) |
           static_cast<uint32_t>(~static_cast<uint32_t>(j));
}

// The state before any Ref position was scored: (-inf, 0), as the host twin starts.
TTSR_ST_HD unsigned long long initial_match_key() { return match_key(-INFINITY, 0); }

TTSR_ST_HD float key_value(unsigned long long key) {
    return ordered_value(static_cast<uint32_t>(key >> 32));
}

TTSR_ST_HD int key_index(unsigned long long key) {
    return static_cast<int>(~static_cast<uint32_t>(key));
}

}  // namespace ttsr_st
