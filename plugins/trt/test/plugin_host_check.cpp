// Host-side check of libttsr_trt_plugin.so through TensorRT's own interface classes,
// without libnvinfer or a GPU: it loads the library the way IPluginRegistry::loadLibrary
// does (dlopen + getCreators/setLoggerFinder) and drives every plugin method that needs no
// device: fields, validation, serialisation, formats, dtypes, shapes, workspace sizing.
//
// Usage: plugin_host_check <path/to/libttsr_trt_plugin.so> [path/to/libttsr_st_cpu.so]
// With the second library, the plugin's workspace is also checked against the kernels'
// ttsr_st_workspace_size: equal at the profile's largest shape, enough at every runtime
// LR size (at the largest Ref) and every runtime Ref size (at the largest LR).
// Prints one "ok <check>" line per passing check; exits 1 at the first failure.
#include <NvInferRuntime.h>

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "contract.h"
#include "ttsr_st_api.h"

using namespace nvinfer1;

namespace
{

std::string lastDlError()
{
    char const* error = dlerror();
    return error != nullptr ? error : "";
}

void require(bool condition, char const* check, std::string const& detail = "")
{
    if (!condition)
    {
        std::printf("FAIL %s %s\n", check, detail.c_str());
        std::fflush(stdout);
        std::exit(1);
    }
}

class RecordingLogger : public ILogger
{
public:
    void log(Severity severity, AsciiChar const* msg) noexcept override
    {
        if (severity <= Severity::kERROR)
        {
            errors.emplace_back(msg);
        }
    }
    bool lastErrorMentions(char const* text) const
    {
        return !errors.empty() && errors.back().find(text) != std::string::npos;
    }
    std::vector<std::string> errors;
};

class FixedLoggerFinder : public ILoggerFinder
{
public:
    explicit FixedLoggerFinder(ILogger* logger)
        : mLogger(logger)
    {
    }
    ILogger* findLogger() override
    {
        return mLogger;
    }

private:
    ILogger* mLogger;
};

// A concrete-valued stand-in for TensorRT's symbolic dimension expressions: enough to
// evaluate getOutputShapes for given input sizes.
class ValueImpl : public apiv::VDimensionExpr
{
public:
    explicit ValueImpl(int64_t value)
        : mValue(value)
    {
    }
    bool isConstant() const override
    {
        return true;
    }
    int64_t getConstantValue() const override
    {
        return mValue;
    }
    bool isSizeTensor() const override
    {
        return false;
    }

private:
    int64_t mValue;
};

class ValueExpr : public IDimensionExpr
{
public:
    explicit ValueExpr(int64_t value)
        : mValueImpl(value)
    {
        mImpl = &mValueImpl;
    }

private:
    ValueImpl mValueImpl;
};

class EvaluatingBuilderImpl : public apiv::VExprBuilder
{
public:
    IDimensionExpr const* constant(int64_t value) override
    {
        mExprs.push_back(std::make_unique<ValueExpr>(value));
        return mExprs.back().get();
    }
    IDimensionExpr const* operation(DimensionOperation op, IDimensionExpr const& a, IDimensionExpr const& b) override
    {
        int64_t const x = a.getConstantValue();
        int64_t const y = b.getConstantValue();
        switch (op)
        {
        case DimensionOperation::kSUM: return constant(x + y);
        case DimensionOperation::kPROD: return constant(x * y);
        case DimensionOperation::kSUB: return constant(x - y);
        case DimensionOperation::kFLOOR_DIV: return constant(x / y);
        default: return nullptr;
        }
    }
    IDimensionExpr const* declareSizeTensor(int32_t, IDimensionExpr const&, IDimensionExpr const&) override
    {
        return nullptr;
    }

private:
    std::vector<std::unique_ptr<ValueExpr>> mExprs;
};

class EvaluatingBuilder : public IExprBuilder
{
public:
    EvaluatingBuilder()
    {
        mImpl = &mBuilderImpl;
    }

private:
    EvaluatingBuilderImpl mBuilderImpl;
};

struct Sizes
{
    int64_t n, ck, h, w, hr, wr, c3, c2, c1;
};

std::vector<Dims> inputDims(Sizes const& s)
{
    auto dims4 = [](int64_t a, int64_t b, int64_t c, int64_t d) {
        Dims dims{};
        dims.nbDims = 4;
        dims.d[0] = a;
        dims.d[1] = b;
        dims.d[2] = c;
        dims.d[3] = d;
        return dims;
    };
    return {dims4(s.n, s.ck, s.h, s.w), dims4(s.n, s.ck, s.hr, s.wr), dims4(s.n, s.c3, s.hr, s.wr),
        dims4(s.n, s.c2, 2 * s.hr, 2 * s.wr), dims4(s.n, s.c1, 4 * s.hr, 4 * s.wr)};
}

std::vector<DynamicPluginTensorDesc> dynamicDescs(Sizes const& s, DataType type, int32_t count = 9)
{
    std::vector<DynamicPluginTensorDesc> descs(count);
    std::vector<Dims> dims = inputDims(s);
    for (int32_t i = 0; i < count; ++i)
    {
        descs[i].desc.type = type;
        descs[i].desc.format = TensorFormat::kLINEAR;
        if (i < 5)
        {
            descs[i].desc.dims = dims[i];
            descs[i].min = dims[i];
            descs[i].opt = dims[i];
            descs[i].max = dims[i];
        }
    }
    return descs;
}

struct Field
{
    char const* name;
    PluginFieldType type;
    int64_t intValue;
    double floatValue;
};

// Owns PluginField storage the way the ONNX parser builds it from node attributes.
class Fields
{
public:
    explicit Fields(std::vector<Field> const& fields)
    {
        mInts.reserve(fields.size());
        mInt64s.reserve(fields.size());
        mFloats.reserve(fields.size());
        for (Field const& f : fields)
        {
            void const* data = nullptr;
            if (f.type == PluginFieldType::kINT32)
            {
                mInts.push_back(static_cast<int32_t>(f.intValue));
                data = &mInts.back();
            }
            else if (f.type == PluginFieldType::kINT64)
            {
                mInt64s.push_back(f.intValue);
                data = &mInt64s.back();
            }
            else
            {
                mFloats.push_back(static_cast<float>(f.floatValue));
                data = &mFloats.back();
            }
            mFields.emplace_back(f.name, data, f.type, 1);
        }
        mCollection.nbFields = static_cast<int32_t>(mFields.size());
        mCollection.fields = mFields.data();
    }
    Fields(Fields const&) = delete;
    Fields& operator=(Fields const&) = delete;
    PluginFieldCollection const* get() const
    {
        return &mCollection;
    }

private:
    std::vector<int32_t> mInts;
    std::vector<int64_t> mInt64s;
    std::vector<float> mFloats;
    std::vector<PluginField> mFields;
    PluginFieldCollection mCollection{};
};

Fields contractFields(int64_t patchSize = TTSR_ST_PATCH_SIZE, double foldDivisor = TTSR_ST_FOLD_DIVISOR,
    int64_t refChunk = 0, int64_t budgetMib = 0)
{
    return Fields({{TTSR_ST_ATTR_PATCH_SIZE, PluginFieldType::kINT32, patchSize, 0.0},
        {TTSR_ST_ATTR_FOLD_DIVISOR, PluginFieldType::kFLOAT32, 0, foldDivisor},
        {TTSR_ST_ATTR_REF_CHUNK, PluginFieldType::kINT32, refChunk, 0.0},
        {TTSR_ST_FIELD_WORKSPACE_BUDGET_MIB, PluginFieldType::kINT32, budgetMib, 0.0}});
}

struct Interfaces
{
    IPluginV3* plugin;
    IPluginV3OneCore* core;
    IPluginV3OneBuild* build;
    IPluginV3OneRuntime* runtime;
};

Interfaces interfacesOf(IPluginV3* plugin)
{
    require(plugin != nullptr, "createPlugin", "returned nullptr for valid fields");
    Interfaces i{plugin, static_cast<IPluginV3OneCore*>(plugin->getCapabilityInterface(PluginCapabilityType::kCORE)),
        static_cast<IPluginV3OneBuild*>(plugin->getCapabilityInterface(PluginCapabilityType::kBUILD)),
        static_cast<IPluginV3OneRuntime*>(plugin->getCapabilityInterface(PluginCapabilityType::kRUNTIME))};
    require(i.core && i.build && i.runtime, "capabilities", "a capability interface is missing");
    return i;
}

void checkCreator(IPluginCreatorV3One* creator)
{
    require(std::strcmp(creator->getPluginName(), TTSR_ST_OP_TYPE) == 0, "creator.name");
    require(std::strcmp(creator->getPluginVersion(), TTSR_ST_PLUGIN_VERSION) == 0, "creator.version");
    require(std::strcmp(creator->getPluginNamespace(), TTSR_ST_PLUGIN_NAMESPACE) == 0, "creator.namespace");
    PluginFieldCollection const* names = creator->getFieldNames();
    char const* const expected[] = {TTSR_ST_ATTR_PATCH_SIZE, TTSR_ST_ATTR_FOLD_DIVISOR, TTSR_ST_ATTR_REF_CHUNK,
        TTSR_ST_FIELD_WORKSPACE_BUDGET_MIB};
    require(names != nullptr && names->nbFields == 4, "creator.fields", "expected 4 field names");
    for (int32_t i = 0; i < 4; ++i)
    {
        require(std::strcmp(names->fields[i].name, expected[i]) == 0, "creator.fields", names->fields[i].name);
    }
    std::printf("ok creator identity and field names\n");
}

void checkRejections(IPluginCreatorV3One* creator, RecordingLogger const& logger)
{
    struct Case
    {
        char const* what;
        Fields fields;
        char const* mention;
    };
    Case const cases[] = {
        {"patch_size=5", contractFields(5), "patch_size=5"},
        {"fold_divisor=4", contractFields(TTSR_ST_PATCH_SIZE, 4.0), "fold_divisor=4"},
        {"ref_chunk=-1", contractFields(TTSR_ST_PATCH_SIZE, TTSR_ST_FOLD_DIVISOR, -1), "ref_chunk=-1"},
        {"workspace_budget_mib=-1", contractFields(TTSR_ST_PATCH_SIZE, TTSR_ST_FOLD_DIVISOR, 0, -1),
            "workspace_budget_mib=-1"},
        {"workspace_budget_mib too large",
            contractFields(TTSR_ST_PATCH_SIZE, TTSR_ST_FOLD_DIVISOR, 0, TTSR_ST_MAX_WORKSPACE_BUDGET_MIB + 1),
            "--workspace-budget"},
        {"fold_divisor as INT32",
            Fields({{TTSR_ST_ATTR_FOLD_DIVISOR, PluginFieldType::kINT32, 9, 0.0}}), "FLOAT32"},
    };
    for (Case const& c : cases)
    {
        IPluginV3* plugin = creator->createPlugin("st", c.fields.get(), TensorRTPhase::kBUILD);
        require(plugin == nullptr, "reject", c.what);
        require(logger.lastErrorMentions(c.mention), "reject.message",
            std::string(c.what) + " -> '" + (logger.errors.empty() ? "" : logger.errors.back()) + "'");
    }
    std::printf("ok invalid attributes rejected with a logged reason\n");
}

void checkDefaultsAndSerialisation(IPluginCreatorV3One* creator)
{
    // The parser only warns about missing attributes, so an empty collection means the defaults.
    PluginFieldCollection empty{0, nullptr};
    Interfaces defaults = interfacesOf(creator->createPlugin("st", &empty, TensorRTPhase::kBUILD));
    std::string const defaultMeta = defaults.build->getMetadataString();
    delete defaults.plugin;

    // The parser narrows INT attributes to INT32; Python users may pass INT64.
    Fields int64Fields({{TTSR_ST_ATTR_REF_CHUNK, PluginFieldType::kINT64, 0, 0.0}});
    Interfaces fromInt64 = interfacesOf(creator->createPlugin("st", int64Fields.get(), TensorRTPhase::kBUILD));
    require(defaultMeta == fromInt64.build->getMetadataString(), "fields.int64");
    delete fromInt64.plugin;

    Fields chunked = contractFields(TTSR_ST_PATCH_SIZE, TTSR_ST_FOLD_DIVISOR, 77, 96);
    Interfaces built = interfacesOf(creator->createPlugin("st", chunked.get(), TensorRTPhase::kBUILD));
    std::string const meta = built.build->getMetadataString();
    require(meta.find("ref_chunk=77") != std::string::npos, "metadata", meta);
    require(meta.find(std::string(TTSR_ST_FIELD_WORKSPACE_BUDGET_MIB) + "=96") != std::string::npos, "metadata", meta);
    require(meta != defaultMeta, "metadata.differs");

    PluginFieldCollection const* serial = built.runtime->getFieldsToSerialize();
    require(serial != nullptr && serial->nbFields == 4, "serialise");
    Interfaces restored = interfacesOf(creator->createPlugin("st", serial, TensorRTPhase::kRUNTIME));
    require(meta == restored.build->getMetadataString(), "serialise.roundtrip", restored.build->getMetadataString());

    Interfaces cloned = interfacesOf(built.plugin->clone());
    require(cloned.plugin != built.plugin && meta == cloned.build->getMetadataString(), "clone");
    require(std::strcmp(cloned.core->getPluginName(), TTSR_ST_OP_TYPE) == 0, "clone.name");
    delete cloned.plugin;
    delete restored.plugin;
    delete built.plugin;
    std::printf("ok defaults, INT64 fields, serialisation round trip and clone\n");
}

void checkFormatsAndTypes(IPluginV3OneBuild* build)
{
    Sizes const s{1, 8, 5, 6, 4, 3, 8, 4, 2};
    require(build->getNbOutputs() == TTSR_ST_NUM_OUTPUTS, "nbOutputs");
    for (DataType type : {DataType::kFLOAT, DataType::kHALF})
    {
        auto descs = dynamicDescs(s, type);
        for (int32_t pos = 0; pos < 9; ++pos)
        {
            require(build->supportsFormatCombination(pos, descs.data(), 5, 4), "formats.accept", std::to_string(pos));
        }
        DataType in[5] = {type, type, type, type, type};
        DataType out[4];
        require(build->getOutputDataTypes(out, 4, in, 5) == 0, "dtypes");
        for (DataType o : out)
        {
            require(o == type, "dtypes.same");
        }
    }
    auto mixed = dynamicDescs(s, DataType::kFLOAT);
    mixed[3].desc.type = DataType::kHALF;
    require(!build->supportsFormatCombination(3, mixed.data(), 5, 4), "formats.mixed");
    auto int8 = dynamicDescs(s, DataType::kINT8);
    require(!build->supportsFormatCombination(0, int8.data(), 5, 4), "formats.int8");
    auto vectorized = dynamicDescs(s, DataType::kHALF);
    vectorized[1].desc.format = TensorFormat::kCHW32;
    require(!build->supportsFormatCombination(1, vectorized.data(), 5, 4), "formats.nonlinear");
    DataType mixedTypes[5] = {DataType::kFLOAT, DataType::kFLOAT, DataType::kHALF, DataType::kFLOAT, DataType::kFLOAT};
    DataType out[4];
    require(build->getOutputDataTypes(out, 4, mixedTypes, 5) != 0, "dtypes.mixed");
    std::printf("ok FP32/FP16 linear accepted, mixed/INT8/vectorised rejected, output dtype = input dtype\n");
}

void checkShapes(IPluginV3OneBuild* build)
{
    for (Sizes const& s : {Sizes{1, 256, 40, 40, 40, 40, 256, 128, 64}, Sizes{2, 8, 3, 7, 5, 2, 6, 4, 3},
             Sizes{3, 1, 1, 1, 1, 1, 1, 1, 1}})
    {
        EvaluatingBuilder exprs;
        std::vector<Dims> dims = inputDims(s);
        DimsExprs in[5];
        for (int32_t i = 0; i < 5; ++i)
        {
            in[i].nbDims = 4;
            for (int32_t d = 0; d < 4; ++d)
            {
                in[i].d[d] = exprs.constant(dims[i].d[d]);
            }
        }
        DimsExprs out[4];
        require(build->getOutputShapes(in, 5, nullptr, 0, out, 4, exprs) == 0, "shapes.status");
        int64_t const expected[4][4] = {{s.n, 1, s.h, s.w}, {s.n, s.c3, s.h, s.w}, {s.n, s.c2, 2 * s.h, 2 * s.w},
            {s.n, s.c1, 4 * s.h, 4 * s.w}};
        for (int32_t o = 0; o < 4; ++o)
        {
            require(out[o].nbDims == 4, "shapes.rank");
            for (int32_t d = 0; d < 4; ++d)
            {
                require(out[o].d[d] != nullptr && out[o].d[d]->getConstantValue() == expected[o][d], "shapes.value",
                    "output " + std::to_string(o) + " axis " + std::to_string(d));
            }
        }
    }
    std::printf("ok output shapes s=(N,1,H,W) t3=(N,C3,H,W) t2=(N,C2,2H,2W) t1=(N,C1,4H,4W)\n");
}

void checkRuntimeShapes(IPluginV3OneBuild* build, IPluginV3OneRuntime* runtime, RecordingLogger const& logger)
{
    Sizes const s{2, 8, 5, 6, 4, 3, 8, 4, 2};
    auto descs = dynamicDescs(s, DataType::kFLOAT);
    require(build->configurePlugin(descs.data(), 5, descs.data() + 5, 4) == 0, "configure");
    PluginTensorDesc in[5], out[4];
    for (int32_t i = 0; i < 5; ++i)
    {
        in[i] = descs[i].desc;
    }
    require(runtime->onShapeChange(in, 5, out, 4) == 0, "onShapeChange.valid");
    in[3].dims.d[2] += 1; // v2 no longer 2*Hr
    require(runtime->onShapeChange(in, 5, out, 4) != 0, "onShapeChange.invalid");
    require(logger.lastErrorMentions("'v2'"), "onShapeChange.message", logger.errors.back());
    auto rank3 = dynamicDescs(s, DataType::kFLOAT);
    rank3[0].desc.dims.nbDims = 3;
    require(build->configurePlugin(rank3.data(), 5, rank3.data() + 5, 4) != 0, "configure.rank");
    std::printf("ok configurePlugin/onShapeChange accept the contract's shapes and name a mismatched input\n");
}

using WorkspaceSizeFn = size_t (*)(ttsr_st_shape const*, ttsr_st_dtype, int, size_t);

size_t profileWorkspace(IPluginV3OneBuild* build, Sizes const& min, Sizes const& max, DataType type)
{
    auto descs = dynamicDescs(max, type);
    std::vector<Dims> minDims = inputDims(min);
    for (int32_t i = 0; i < 5; ++i)
    {
        descs[i].min = minDims[i];
        descs[i].desc.dims.d[2] = -1;
        descs[i].desc.dims.d[3] = -1;
    }
    return build->getWorkspaceSize(descs.data(), 5, descs.data() + 5, 4);
}

//! budgetMib: the plugin's workspace_budget_mib field, which the kernels' sizes must follow.
void checkWorkspace(IPluginV3OneBuild* build, WorkspaceSizeFn kernelWorkspace, int32_t budgetMib)
{
    // The engine's workspace is sized once per profile and reused for every runtime shape in it.
    size_t const budget = static_cast<size_t>(budgetMib) << 20;
    Sizes const smallest{1, 256, 1, 1, 1, 1, 256, 128, 64};
    for (DataType type : {DataType::kFLOAT, DataType::kHALF})
    {
        ttsr_st_dtype const dtype = type == DataType::kFLOAT ? TTSR_ST_FLOAT32 : TTSR_ST_FLOAT16;
        for (Sizes const& max : {Sizes{2, 256, 40, 40, 120, 120, 256, 128, 64}, Sizes{1, 256, 64, 48, 30, 100, 256, 128, 64},
                 Sizes{1, 256, 7, 5, 3, 2, 256, 128, 64}})
        {
            size_t const planned = profileWorkspace(build, smallest, max, type);
            require(planned > 0, "workspace.positive");
            // Growing the profile in any one dimension never shrinks the workspace.
            for (int32_t axis = 0; axis < 4; ++axis)
            {
                Sizes larger = max;
                int64_t* dims[4] = {&larger.h, &larger.w, &larger.hr, &larger.wr};
                *dims[axis] += 3;
                require(profileWorkspace(build, smallest, larger, type) >= planned, "workspace.monotone",
                    "axis " + std::to_string(axis));
            }
            if (kernelWorkspace == nullptr)
            {
                continue;
            }
            auto kernelShape = [&max](int h, int w, int hr, int wr) {
                return ttsr_st_shape{static_cast<int>(max.n), 256, h, w, hr, wr, 256, 128, 64};
            };
            ttsr_st_shape const largest = kernelShape(static_cast<int>(max.h), static_cast<int>(max.w),
                static_cast<int>(max.hr), static_cast<int>(max.wr));
            require(planned == kernelWorkspace(&largest, dtype, 0, budget), "workspace.largest");
            // Independently of how the plugin sizes it: the planned workspace covers what the
            // kernels need at every runtime LR size and every runtime Ref size of the profile.
            auto requireCovers = [&](ttsr_st_shape const& shape) {
                size_t const needed = kernelWorkspace(&shape, dtype, 0, budget);
                require(needed <= planned, "workspace.covers",
                    "LR " + std::to_string(shape.h) + "x" + std::to_string(shape.w) + " Ref "
                        + std::to_string(shape.hr) + "x" + std::to_string(shape.wr) + " needs "
                        + std::to_string(needed) + " bytes > " + std::to_string(planned) + " planned for the profile");
            };
            for (int h = 1; h <= largest.h; ++h)
            {
                for (int w = 1; w <= largest.w; ++w)
                {
                    requireCovers(kernelShape(h, w, largest.hr, largest.wr));
                }
            }
            for (int hr = 1; hr <= largest.hr; ++hr)
            {
                for (int wr = 1; wr <= largest.wr; ++wr)
                {
                    requireCovers(kernelShape(largest.h, largest.w, hr, wr));
                }
            }
        }
    }
    auto invalid = dynamicDescs(Sizes{1, 8, 5, 6, 4, 3, 8, 4, 2}, DataType::kINT32);
    require(build->getWorkspaceSize(invalid.data(), 5, invalid.data() + 5, 4) == 0, "workspace.dtype");
    std::printf("ok workspace (budget %d MiB) positive, non-decreasing in the profile%s\n", budgetMib,
        kernelWorkspace != nullptr ? ", equals ttsr_st_workspace_size at the largest shape and covers every runtime LR and Ref size" : "");
}

} // namespace

int main(int argc, char** argv)
{
    if (argc != 2 && argc != 3)
    {
        std::fprintf(stderr, "usage: %s path/to/libttsr_trt_plugin.so [path/to/libttsr_st_cpu.so]\n", argv[0]);
        return 2;
    }
    void* library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    require(library != nullptr, "dlopen", lastDlError());
    using GetCreators = IPluginCreatorInterface* const* (*) (int32_t&);
    using SetLoggerFinder = void (*)(ILoggerFinder*);
    auto getCreators = reinterpret_cast<GetCreators>(dlsym(library, "getCreators"));
    auto setLoggerFinder = reinterpret_cast<SetLoggerFinder>(dlsym(library, "setLoggerFinder"));
    require(getCreators != nullptr && setLoggerFinder != nullptr, "entry points");

    RecordingLogger logger;
    FixedLoggerFinder finder(&logger);
    setLoggerFinder(&finder);

    int32_t nbCreators = 0;
    IPluginCreatorInterface* const* creators = getCreators(nbCreators);
    require(creators != nullptr && nbCreators == 1, "getCreators", std::to_string(nbCreators));
    InterfaceInfo const info = creators[0]->getInterfaceInfo();
    require(std::strcmp(info.kind, "PLUGIN CREATOR_V3ONE") == 0 && info.major == 1, "creator.kind", info.kind);
    auto* creator = static_cast<IPluginCreatorV3One*>(creators[0]);
    std::printf("ok entry points, one IPluginCreatorV3One\n");

    checkCreator(creator);
    checkRejections(creator, logger);
    checkDefaultsAndSerialisation(creator);

    Fields fields = contractFields();
    Interfaces plugin = interfacesOf(creator->createPlugin("st", fields.get(), TensorRTPhase::kBUILD));
    checkFormatsAndTypes(plugin.build);
    checkShapes(plugin.build);
    checkRuntimeShapes(plugin.build, plugin.runtime, logger);
    WorkspaceSizeFn kernelWorkspace = nullptr;
    if (argc == 3)
    {
        void* kernels = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
        require(kernels != nullptr, "dlopen kernels", lastDlError());
        kernelWorkspace = reinterpret_cast<WorkspaceSizeFn>(dlsym(kernels, "ttsr_st_workspace_size"));
        require(kernelWorkspace != nullptr, "ttsr_st_workspace_size");
    }
    checkWorkspace(plugin.build, kernelWorkspace, 0);
    Fields budgeted = contractFields(TTSR_ST_PATCH_SIZE, TTSR_ST_FOLD_DIVISOR, 0, 4);
    Interfaces small = interfacesOf(creator->createPlugin("st", budgeted.get(), TensorRTPhase::kBUILD));
    checkWorkspace(small.build, kernelWorkspace, 4);
    // The field reaches the kernels. plan: at LR = Ref 120 the default tile (one 791 MiB GEMM)
    // exceeds a 4 MiB budget, so the budgeted plugin plans less memory.
    Sizes const ref120{1, 256, 120, 120, 120, 120, 256, 128, 64};
    require(profileWorkspace(small.build, ref120, ref120, DataType::kHALF)
            < profileWorkspace(plugin.build, ref120, ref120, DataType::kHALF), "workspace.budget");
    std::printf("ok workspace_budget_mib bounds the planned workspace\n");
    delete small.plugin;
    delete plugin.plugin;
    std::printf("all checks passed\n");
    return 0;
}
