// IEEE binary16 <-> float32 on bit patterns, for the host twin (which stores
// float16 tensors as uint16).  Float to half rounds to nearest, ties to even,
// like numpy's astype(float16) and CUDA's __float2half.
#pragma once

#include <stdint.h>
#include <string.h>

#include "host_device.h"

namespace ttsr_st {

TTSR_ST_HD uint32_t float_bits(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

TTSR_ST_HD float bits_float(uint32_t bits) {
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

TTSR_ST_HD uint16_t float_to_half_bits(float value) {
    const uint32_t bits = float_bits(value);
    const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
    const uint32_t magnitude = bits & 0x7fffffffu;
    if (magnitude >= 0x7f800000u) {  // inf stays inf; NaN becomes a quiet NaN
        return static_cast<uint16_t>(sign | (magnitude > 0x7f800000u ? 0x7e00u : 0x7c00u));
    }
    if (magnitude >= 0x477ff000u) {  // >= 65520 rounds past the largest half, 65504
        return static_cast<uint16_t>(sign | 0x7c00u);
    }
    if (magnitude < 0x38800000u) {  // below 2^-14: a half subnormal (units of 2^-24) or zero
        if (magnitude <= 0x33000000u) {  // <= 2^-25 rounds (to even) to zero
            return sign;
        }
        const uint32_t exponent = magnitude >> 23;
        const uint32_t mantissa = (magnitude & 0x7fffffu) | 0x800000u;
        const uint32_t shift = 126u - exponent;  // 14..24
        uint32_t rounded = mantissa >> shift;
        const uint32_t rest = mantissa & ((1u << shift) - 1u);
        const uint32_t halfway = 1u << (shift - 1u);
        if (rest > halfway || (rest == halfway && (rounded & 1u))) {
            ++rounded;  // may carry into the smallest normal, which is the right encoding
        }
        return static_cast<uint16_t>(sign | rounded);
    }
    // Normal: rebias the exponent (127 -> 15) and drop 13 mantissa bits; a
    // rounding carry correctly propagates into the exponent.
    uint32_t rounded = (magnitude - 0x38000000u) >> 13;
    const uint32_t rest = magnitude & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (rounded & 1u))) {
        ++rounded;
    }
    return static_cast<uint16_t>(sign | rounded);
}

TTSR_ST_HD float half_bits_to_float(uint16_t half) {
    const uint32_t sign = static_cast<uint32_t>(half & 0x8000u) << 16;
    uint32_t exponent = (half >> 10) & 0x1fu;
    uint32_t mantissa = half & 0x3ffu;
    if (exponent == 0x1fu) {
        return bits_float(sign | 0x7f800000u | (mantissa << 13));
    }
    if (exponent == 0) {
        if (mantissa == 0) {
            return bits_float(sign);
        }
        exponent = 113;  // renormalise the subnormal: 2^-14 has float exponent 113
        while ((mantissa & 0x400u) == 0) {
            mantissa <<= 1;
            --exponent;
        }
        return bits_float(sign | (exponent << 23) | ((mantissa & 0x3ffu) << 13));
    }
    return bits_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

}  // namespace ttsr_st
