"""Export a sentence-transformers BERT encoder (all-MiniLM-L6-v2) to ONNX, without torch.

shelf runs this at `shelf model fetch` time, in a throwaway venv holding only pinned `onnx`,
`numpy` and `safetensors` from PyPI:

    python export_onnx.py MODEL_DIR OUT_PATH [INT8_OUT_PATH]

MODEL_DIR is a sentence-transformers model directory (config.json, model.safetensors). The
graph is built node by node from the safetensors weights and is the whole sentence encoder:

    inputs   input_ids       int64   [batch, sequence]
             attention_mask  int64   [batch, sequence]
    output   sentence_embedding  float32 [batch, hidden]

i.e. BERT (token types all 0) -> mean pooling over tokens where attention_mask = 1 -> L2
normalisation, matching sentence-transformers' `encode(..., normalize_embeddings=True)`.
The file is opset 17 / IR 8 and byte-identical across runs with the same package versions.
OUT_PATH is written atomically (OUT_PATH.partial, then renamed).

INT8_OUT_PATH, when given, receives the same encoder with 8-bit weights (for queries, and
for products when an index asks): every MatMul by a weight matrix becomes dynamic
quantisation of its input (uint8, one range per call) times the matrix quantised per output
column (int8, symmetric, 7 bits: see QUANT_LEVELS), rescaled to float. One scale per column
keeps cosine to the float encoder at 0.99 on shop queries and titles; one scale per matrix
drops it to 0.8. Attention's activation-by-activation products stay float. Signed weights
let ONNX Runtime use the CPU's u8 x s8 dot products: batches of titles run 1.7x faster than
float, where unsigned weights gave no gain.
"""
import json
import math
import os
import sys

try:
    import numpy as np
    from onnx import TensorProto, checker, helper, numpy_helper
    from safetensors.numpy import load_file
except ImportError as e:
    sys.exit(f"export_onnx: error: {e}; this script needs onnx, numpy and safetensors")

OPSET = 17  # first opset with LayerNormalization
IR_VERSION = 8  # the IR version that goes with opset 17; loadable by any recent onnxruntime
# Additive mask for padded keys, as Hugging Face does. It stays finite, so a row whose keys are
# all padding softmaxes to uniform weights instead of NaN.
MASK_NEG = float(np.finfo(np.float32).min)
# Largest |weight| after quantisation. Activations are uint8 and weights int8, so products
# run on the CPU's u8 x s8 instructions (VNNI where present). Without VNNI (AVX2), x86 sums
# pairs of products in 16 bits, which overflows for 8-bit weights (255 * 127 * 2 > 32767);
# 7-bit weights (255 * 63 * 2 < 32767) never do, on any CPU.
QUANT_LEVELS = 63


def fail(msg):
    sys.exit(f"export_onnx: error: {msg}")


def load_config(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    if cfg.get("model_type") != "bert":
        fail(f"model_type is {cfg.get('model_type')!r}, only 'bert' is supported")
    # Hugging Face's "gelu" is the exact erf form; tanh approximations would need other nodes.
    if cfg.get("hidden_act") != "gelu":
        fail(f"hidden_act is {cfg.get('hidden_act')!r}, only 'gelu' (erf) is supported")
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        fail("only absolute position embeddings are supported")
    if cfg["hidden_size"] % cfg["num_attention_heads"]:
        fail("hidden_size is not a multiple of num_attention_heads")
    # The pooling is fixed to mean pooling; refuse a model that says otherwise.
    pooling = os.path.join(model_dir, "1_Pooling", "config.json")
    if os.path.exists(pooling):
        with open(pooling) as f:
            if not json.load(f).get("pooling_mode_mean_tokens"):
                fail(f"{pooling} does not ask for mean pooling")
    return cfg


class Graph:
    """Collects nodes and initializers; every name is derived from the model structure, so
    the serialized bytes do not depend on anything but the inputs."""

    def __init__(self, weights, prefix):
        self.weights, self.prefix = weights, prefix
        self.nodes, self.inits, self.names = [], [], set()

    def const(self, name, array):
        if name not in self.names:  # a constant used in several places is stored once
            self.names.add(name)
            self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def get(self, key):
        full = self.prefix + key
        if full not in self.weights:
            fail(f"tensor {full!r} missing from model.safetensors")
        return self.weights[full].astype(np.float32)

    def w(self, key, transpose=False, scale=1.0):
        """A checkpoint tensor as an initializer; Linear weights are stored transposed so
        that MatMul(x, W) computes x @ W.T like torch.nn.Linear."""
        a = self.get(key)
        return self.const(key, (a.T if transpose else a) * np.float32(scale))

    def op(self, op_type, inputs, name, **attrs):
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attrs))
        return name

    def linear(self, x, key, name, scale=1.0):
        y = self.op("MatMul", [x, self.w(key + ".weight", True, scale)], name + "/matmul")
        return self.op("Add", [y, self.w(key + ".bias", scale=scale)], name)

    def layer_norm(self, x, key, name, eps):
        return self.op("LayerNormalization",
                       [x, self.w(key + ".weight"), self.w(key + ".bias")],
                       name, axis=-1, epsilon=eps)


def build(cfg, weights):
    # The checkpoint may or may not prefix its keys (e.g. "bert."); take whatever precedes
    # the word embeddings.
    anchor = "embeddings.word_embeddings.weight"
    prefixes = [k[: -len(anchor)] for k in weights if k.endswith(anchor)]
    if len(prefixes) != 1:
        fail(f"expected one '*{anchor}' tensor, found {len(prefixes)}")
    g = Graph(weights, prefixes[0])
    hidden, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    head_dim, eps = hidden // heads, cfg["layer_norm_eps"]
    if g.get(anchor).shape[1] != hidden:
        fail(f"word embeddings are {g.get(anchor).shape}, config.json says hidden_size {hidden}")

    # Embeddings: word + token type 0 + position. Positions are 0..sequence-1, so their rows
    # are the first `sequence` rows of the table: a Slice, ended by the input's sequence
    # length. (A Gather on a Range would do too, but at its extended optimization level
    # onnxruntime 1.31's GatherToSliceFusion turns that into a Slice that fails to run.)
    tok0 = g.const("emb/token_type_0", g.get("embeddings.token_type_embeddings.weight")[0])
    x = g.op("Gather", [g.w("embeddings.word_embeddings.weight"), "input_ids"], "emb/word")
    x = g.op("Add", [x, tok0], "emb/add_token_type")
    seq_len = g.op("Shape", ["input_ids"], "emb/seq_len", start=1, end=2)  # 1-D: [sequence]
    zero = g.const("zero_1d", np.array([0], np.int64))
    pos = g.op("Slice", [g.w("embeddings.position_embeddings.weight"), zero, seq_len, zero],
               "emb/pos")  # starts [0], ends [sequence], axes [0]
    x = g.op("Add", [x, pos], "emb/add_pos")
    x = g.layer_norm(x, "embeddings.LayerNorm", "emb/ln", eps)

    # Attention mask as float [batch, sequence], and the additive form [batch, 1, 1, sequence].
    mask = g.op("Cast", ["attention_mask"], "mask/float", to=TensorProto.FLOAT)
    one_f = g.const("one_f32", np.array(1.0, np.float32))
    inv = g.op("Sub", [one_f, mask], "mask/inverted")
    neg = g.op("Mul", [inv, g.const("mask_neg", np.array(MASK_NEG, np.float32))], "mask/neg")
    ext = g.op("Unsqueeze", [neg, g.const("axes_1_2", np.array([1, 2], np.int64))], "mask/ext")

    split_shape = g.const("shape_split_heads", np.array([0, 0, heads, head_dim], np.int64))
    merge_shape = g.const("shape_merge_heads", np.array([0, 0, hidden], np.int64))
    sqrt2 = g.const("sqrt2", np.array(math.sqrt(2), np.float32))
    half = g.const("half", np.array(0.5, np.float32))
    for i in range(cfg["num_hidden_layers"]):
        p, n = f"encoder.layer.{i}.", f"l{i}/"
        # 1/sqrt(head_dim) is folded into the query projection; for head_dim 64 it is a power
        # of two, so this is bit-exact with scaling the scores afterwards.
        q = g.linear(x, p + "attention.self.query", n + "q", scale=1 / math.sqrt(head_dim))
        k = g.linear(x, p + "attention.self.key", n + "k")
        v = g.linear(x, p + "attention.self.value", n + "v")
        # [b, s, hidden] -> [b, heads, s, d]; keys go straight to [b, heads, d, s].
        q = g.op("Transpose", [g.op("Reshape", [q, split_shape], n + "q/split")], n + "q/heads",
                 perm=[0, 2, 1, 3])
        k = g.op("Transpose", [g.op("Reshape", [k, split_shape], n + "k/split")], n + "k/heads",
                 perm=[0, 2, 3, 1])
        v = g.op("Transpose", [g.op("Reshape", [v, split_shape], n + "v/split")], n + "v/heads",
                 perm=[0, 2, 1, 3])
        scores = g.op("Add", [g.op("MatMul", [q, k], n + "scores"), ext], n + "scores/masked")
        probs = g.op("Softmax", [scores], n + "probs", axis=-1)
        ctx = g.op("Transpose", [g.op("MatMul", [probs, v], n + "ctx")], n + "ctx/t",
                   perm=[0, 2, 1, 3])
        ctx = g.op("Reshape", [ctx, merge_shape], n + "ctx/merged")
        a = g.linear(ctx, p + "attention.output.dense", n + "attn_out")
        x = g.layer_norm(g.op("Add", [a, x], n + "attn_res"),
                         p + "attention.output.LayerNorm", n + "attn_ln", eps)
        # Feed-forward with exact GELU: 0.5 * h * (1 + erf(h / sqrt(2))).
        h = g.linear(x, p + "intermediate.dense", n + "ff_in")
        erf = g.op("Erf", [g.op("Div", [h, sqrt2], n + "gelu/div")], n + "gelu/erf")
        erf = g.op("Add", [erf, one_f], n + "gelu/add")
        h = g.op("Mul", [g.op("Mul", [h, erf], n + "gelu/mul"), half], n + "gelu")
        o = g.linear(h, p + "output.dense", n + "ff_out")
        x = g.layer_norm(g.op("Add", [o, x], n + "ff_res"),
                         p + "output.LayerNorm", n + "ff_ln", eps)

    # Mean pooling over real tokens, then L2 normalisation (as sentence-transformers does).
    axis1 = g.const("axis_1", np.array([1], np.int64))
    m3 = g.op("Unsqueeze", [mask, g.const("axis_2", np.array([2], np.int64))], "pool/mask")
    summed = g.op("ReduceSum", [g.op("Mul", [x, m3], "pool/masked"), axis1], "pool/sum",
                  keepdims=0)
    count = g.op("ReduceSum", [mask, axis1], "pool/count", keepdims=1)
    count = g.op("Max", [count, g.const("eps_count", np.array(1e-9, np.float32))], "pool/count_min")
    mean = g.op("Div", [summed, count], "pool/mean")
    # (In opset 17 ReduceSum takes its axes as an input, ReduceL2 still as an attribute.)
    norm = g.op("ReduceL2", [mean], "norm/l2", axes=[1], keepdims=1)
    norm = g.op("Max", [norm, g.const("eps_norm", np.array(1e-12, np.float32))], "norm/l2_min")
    g.op("Div", [mean, norm], "sentence_embedding")

    dims = ["batch", "sequence"]
    graph = helper.make_graph(
        g.nodes, "shelf_sentence_encoder",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, dims),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, dims)],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", hidden])],
        initializer=g.inits)
    model = helper.make_model(graph, producer_name="shelf", ir_version=IR_VERSION,
                              opset_imports=[helper.make_opsetid("", OPSET)])
    checker.check_model(model, full_check=True)
    return model


def quantize_columns(w, levels=QUANT_LEVELS):
    """A [K, N] float matrix as int8 with one scale per column and zero at zero, so that
    w[:, n] ~ q[:, n] * scale[n] with |q| <= levels (see QUANT_LEVELS)."""
    scale = (np.abs(w).max(axis=0) / levels).astype(np.float32)
    scale[scale == 0] = 1.0
    q = np.clip(np.round(w / scale), -levels, levels).astype(np.int8)
    return q, scale, np.zeros(w.shape[1], np.int8)


def int8_graph(model):
    """The float encoder with its weight MatMuls made 8-bit (see the module doc): the graph
    onnxruntime fuses into one quantised matrix product per weight."""
    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    nodes, inits, quantized_inputs, replaced = [], [], {}, set()
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in weights:
            nodes.append(node)
            continue
        x, w_name = node.input
        name = node.output[0]
        if x not in quantized_inputs:  # q, k and v read the same input: quantise it once
            outs = [f"{x}/q8", f"{x}/q8/scale", f"{x}/q8/zero"]
            nodes.append(helper.make_node("DynamicQuantizeLinear", [x], outs, name=f"{x}/q8"))
            quantized_inputs[x] = outs
        xq, x_scale, x_zero = quantized_inputs[x]
        q, scale, zero = quantize_columns(numpy_helper.to_array(weights[w_name]))
        inits += [numpy_helper.from_array(q, f"{w_name}/q8"),
                  numpy_helper.from_array(scale, f"{w_name}/q8/scale"),
                  numpy_helper.from_array(zero, f"{w_name}/q8/zero")]
        replaced.add(w_name)
        nodes += [
            helper.make_node("MatMulInteger", [xq, f"{w_name}/q8", x_zero, f"{w_name}/q8/zero"],
                             [f"{name}/int"], name=f"{name}/int"),
            helper.make_node("Cast", [f"{name}/int"], [f"{name}/float"], name=f"{name}/float",
                             to=TensorProto.FLOAT),
            helper.make_node("Mul", [x_scale, f"{w_name}/q8/scale"], [f"{name}/scale"], name=f"{name}/scale"),
            helper.make_node("Mul", [f"{name}/float", f"{name}/scale"], [name], name=name),
        ]
    kept = [t for t in graph.initializer if t.name not in replaced]
    quantized = helper.make_graph(nodes, graph.name, list(graph.input), list(graph.output),
                                  initializer=kept + inits)
    out = helper.make_model(quantized, producer_name="shelf", ir_version=IR_VERSION,
                            opset_imports=[helper.make_opsetid("", OPSET)])
    checker.check_model(out, full_check=True)
    return out


def write(model, out):
    """Writes `model` to `out` atomically (`out.partial`, then renamed)."""
    partial = out + ".partial"
    try:
        with open(partial, "wb") as f:
            f.write(model.SerializeToString(deterministic=True))
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, out)
    except BaseException as e:
        if os.path.exists(partial):
            os.remove(partial)
        if isinstance(e, OSError):
            fail(f"cannot write {out}: {e}")
        raise
    print(f"wrote {out}")


def main(argv):
    if len(argv) not in (3, 4):
        sys.exit(f"usage: {os.path.basename(argv[0])} MODEL_DIR OUT_PATH [INT8_OUT_PATH]")
    model_dir, out = argv[1], argv[2]
    for name in ("config.json", "model.safetensors"):
        if not os.path.isfile(os.path.join(model_dir, name)):
            fail(f"{os.path.join(model_dir, name)} not found")
    try:
        weights = load_file(os.path.join(model_dir, "model.safetensors"))
        model = build(load_config(model_dir), weights)
        quantized = int8_graph(model) if len(argv) == 4 else None
    except Exception as e:  # unreadable or malformed input: say what, without a traceback
        fail(f"cannot export {model_dir}: {type(e).__name__}: {e}")
    write(model, out)
    if quantized is not None:
        write(quantized, argv[3])


if __name__ == "__main__":
    main(sys.argv)
