#!/usr/bin/env python3
"""PyTorch's attention as an external baseline: times torch scaled_dot_product_attention with its flash and
cuDNN backends, and FlexAttention, on a GPU, and writes an attnbench result file (schema
attnbench-results/1, results/README.md) so that `attnbench report ours.h5 torch.h5` puts both in one table.

The shapes are those of suites/gpu.json (FlashAttention's benchmark convention): batch x seq_len = 16K
tokens, heads x head_dim = 2048, L = 1K...32K, D = 64 and 128, bf16, causal and not; each cell's task
parameters are written exactly as attnbench writes them for its `synthetic` task, so a pivot puts the
torch methods and attnbench's in the same columns.

Measurement follows harness/cuda (docs/gpu.md): CUDA events; before each cold sample the L2 is written
over (twice its size); a sample's work is queued while the stream is held (torch.cuda._sleep), and a
sample whose start event fired before the work was queued is discarded and the hold lengthened; warm-up,
then samples until the relative standard error of the median is under max_noise (0.5% by default), with
min samples, a time cap and a timeout; a sample during which the SM clock (NVML) fell under 75% of the
default clock is discarded and counted. Nothing on the GPU is changed: NVML is only read.

    python3 baselines/external/torch_sdpa.py -o runs/torch_sdpa.h5
    python3 baselines/external/torch_sdpa.py --selftest-schema /tmp/schema.h5   # no GPU or torch needed
"""
import argparse
import ctypes
import datetime
import hashlib
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import warnings

SCHEMA_VERSION = "attnbench-results/1"
GPU_MAX_NOISE = 0.005  # attnbench's kGpuMaxNoise
THROTTLE_THRESHOLD = 0.75
THROTTLE_RECOVERY_S = 0.05
HOT_BATCH_TARGET_S = 1e-3
MAX_BATCH = 1000
METHODS = ("torch_flash", "torch_cudnn", "flex")
SCRIPT = "baselines/external/torch_sdpa.py"
# The one cell of --selftest-schema (tests/harness/test_cuda_backend.cpp runs attnbench on the same shape).
SELFTEST_SHAPE = dict(batch=1, heads=2, seq_len=128, head_dim=64, causal=False)


def fail(message, code=2):
    print("torch_sdpa.py: " + message, file=sys.stderr)
    sys.exit(code)


# --- attnbench's statistics and timing policy (harness/src/measure.cpp), line for line ---------------

def median(xs):
    return statistics.median(xs) if xs else 0.0


def median_rse(xs):
    """Relative standard error of the median: 1.2533 * 1.4826 * MAD / (sqrt(n) * median)."""
    if len(xs) < 2:
        return math.inf
    med = median(xs)
    if med <= 0:
        return math.inf
    mad = median([abs(x - med) for x in xs])
    return 1.2533 * 1.4826 * mad / math.sqrt(len(xs)) / med


def summarize(samples):
    n = len(samples)
    s = dict(samples=n, median_s=0.0, mean_s=0.0, min_s=0.0, max_s=0.0, stddev_s=0.0, rse=0.0)
    if n == 0:
        return s
    s.update(median_s=median(samples), mean_s=statistics.fmean(samples), min_s=min(samples), max_s=max(samples),
             stddev_s=statistics.stdev(samples) if n > 1 else 0.0, rse=median_rse(samples))
    return s


class Policy:
    def __init__(self, warmup=3, min_samples=10, max_samples=1000, max_noise=GPU_MAX_NOISE, max_time_s=2.0,
                 cold_cache=True, timeout_s=120.0):
        self.warmup, self.min_samples, self.max_samples = warmup, min_samples, max_samples
        self.max_noise, self.max_time_s, self.cold_cache, self.timeout_s = max_noise, max_time_s, cold_cache, timeout_s

    def as_json(self):
        return dict(warmup=self.warmup, min_samples=self.min_samples, max_samples=self.max_samples,
                    max_noise=self.max_noise, max_time_s=self.max_time_s, cold_cache=self.cold_cache,
                    timeout_s=self.timeout_s)


def measure(sampler, policy):
    """Warm-up, then samples until the median is precise enough, time is up, or max_samples."""
    clock = time.monotonic
    cell_start = clock()
    stats = summarize([])
    warmups = 0
    for _ in range(policy.warmup):
        sampler.warmup()
        warmups += 1
        if clock() - cell_start > policy.timeout_s:
            stats.update(warmup=warmups, discarded=0, stop_reason="timeout", converged=False)
            return stats, []
        if clock() - cell_start > policy.max_time_s:
            break
    sampling_start = clock()
    samples, discarded, reason = [], 0, None
    while reason is None:
        t = sampler.sample(policy.cold_cache)
        if t is None:
            discarded += 1
        else:
            samples.append(t)
        n = len(samples)
        if clock() - cell_start > policy.timeout_s:
            reason = "timeout"
        elif n + discarded >= policy.max_samples:
            reason = "max_samples"
        elif n >= policy.min_samples and median_rse(samples) <= policy.max_noise:
            reason = "noise"
        elif n >= policy.min_samples and clock() - sampling_start >= policy.max_time_s:
            reason = "time"
    stats = summarize(samples)
    stats.update(warmup=warmups, discarded=discarded, stop_reason=reason, converged=stats["rse"] <= policy.max_noise)
    return stats, samples


def hot_batch_size(run_s):
    if not run_s > 0:
        return MAX_BATCH
    return int(min(max(math.ceil(HOT_BATCH_TARGET_S / run_s), 1), MAX_BATCH))


def clock_ok(sm_mhz, reference_mhz):
    return reference_mhz == 0 or 4 * sm_mhz >= 3 * reference_mhz


# --- NVML through ctypes: read-only calls, as harness/cuda/nvml.cpp ---------------------------------

class Nvml:
    def __init__(self, library="libnvidia-ml.so.1"):
        self.why, self.lib = "", None
        try:
            lib = ctypes.CDLL(library)
        except OSError as e:
            self.why = "NVML not found (%s)" % e
            return
        init = getattr(lib, "nvmlInit_v2", None) or getattr(lib, "nvmlInit", None)
        if init is None or init() != 0:
            self.why = "NVML failed to initialise"
            return
        self.lib = lib

    def _call(self, name, *args):
        fn = getattr(self.lib, name, None) if self.lib else None
        return fn is not None and fn(*args) == 0

    def handle(self, pci_bus_id=None, uuid=None):
        h = ctypes.c_void_p()
        if pci_bus_id and self._call("nvmlDeviceGetHandleByPciBusId_v2", pci_bus_id.encode(), ctypes.byref(h)):
            return h
        if uuid and self._call("nvmlDeviceGetHandleByUUID", uuid.encode(), ctypes.byref(h)):
            return h
        return None

    def _uint(self, name, h, *args):
        v = ctypes.c_uint()
        return v.value if self._call(name, h, *args, ctypes.byref(v)) else None

    def _ull(self, name, h):
        v = ctypes.c_ulonglong()
        return v.value if self._call(name, h, ctypes.byref(v)) else None

    def _text(self, name, *args):
        buf = ctypes.create_string_buffer(128)
        return buf.value.decode() if self._call(name, *args, buf, ctypes.c_uint(128)) else ""

    def sm_clock(self, h):
        return self._uint("nvmlDeviceGetClockInfo", h, ctypes.c_int(1))

    def reference_sm_clock(self, h):
        for name in ("nvmlDeviceGetDefaultApplicationsClock", "nvmlDeviceGetMaxClockInfo"):
            v = self._uint(name, h, ctypes.c_int(1))
            if v:
                return v
        return 0

    def state(self, h):
        s = {}
        for key, value in (("sm_clock_mhz", self.sm_clock(h)),
                           ("mem_clock_mhz", self._uint("nvmlDeviceGetClockInfo", h, ctypes.c_int(2))),
                           ("temperature_c", self._uint("nvmlDeviceGetTemperature", h, ctypes.c_int(0))),
                           ("power_w", self._uint("nvmlDeviceGetPowerUsage", h)),
                           ("clock_event_reasons", self._ull("nvmlDeviceGetCurrentClocksEventReasons", h)
                            if hasattr(self.lib, "nvmlDeviceGetCurrentClocksEventReasons")
                            else self._ull("nvmlDeviceGetCurrentClocksThrottleReasons", h)),
                           ("energy_j", self._ull("nvmlDeviceGetTotalEnergyConsumption", h)),
                           ("pstate", self._uint("nvmlDeviceGetPerformanceState", h))):
            if value is not None:
                s[key] = float(value)
        if s.get("pstate", 0) > 15:  # NVML_PSTATE_UNKNOWN
            del s["pstate"]
        if "power_w" in s:
            s["power_w"] /= 1000.0  # milliwatts
        if "energy_j" in s:
            s["energy_j"] /= 1000.0  # millijoules
        return s

    def info(self, h):
        d = dict(available=self.lib is not None)
        if not self.lib:
            d["note"] = self.why
            return d
        d["driver_version"] = self._text("nvmlSystemGetDriverVersion")
        d["nvml_version"] = self._text("nvmlSystemGetNVMLVersion")
        if h is None:
            d["note"] = "the device was not found in NVML (by PCI bus id or UUID)"
            return d
        mode = ctypes.c_int()
        if self._call("nvmlDeviceGetPersistenceMode", h, ctypes.byref(mode)):
            d["persistence_mode"] = bool(mode.value)
        limit = self._uint("nvmlDeviceGetEnforcedPowerLimit", h)
        if limit is not None:
            d["enforced_power_limit_w"] = limit / 1000.0
        for key, name, domain in (("default_applications_sm_clock_mhz", "nvmlDeviceGetDefaultApplicationsClock", 1),
                                  ("default_applications_mem_clock_mhz", "nvmlDeviceGetDefaultApplicationsClock", 2),
                                  ("max_sm_clock_mhz", "nvmlDeviceGetMaxClockInfo", 1),
                                  ("max_mem_clock_mhz", "nvmlDeviceGetMaxClockInfo", 2)):
            v = self._uint(name, h, ctypes.c_int(domain))
            if v is not None:
                d[key] = v
        d["reference_sm_clock_mhz"] = self.reference_sm_clock(h)
        return d


# --- the result file, exactly as harness/src/results.cpp writes it ----------------------------------

CELL_COLUMNS = [
    ("index", "i8"), ("id", "str"), ("method", "str"), ("method_name", "str"), ("family", "str"),
    ("method_params", "str"), ("task", "str"), ("task_kind", "str"), ("task_params", "str"), ("seed", "u8"),
    ("status", "str"), ("reason", "str"), ("device", "str"), ("threads", "i8"), ("batch", "i8"), ("heads", "i8"),
    ("kv_heads", "i8"), ("q_len", "i8"), ("kv_len", "i8"), ("head_dim", "i8"), ("value_dim", "i8"), ("dtype", "str"),
    ("mask", "str"), ("causal", "i1"), ("flops", "f8"), ("bytes", "f8"), ("warmup", "i8"), ("samples", "i8"),
    ("median_s", "f8"), ("mean_s", "f8"), ("min_s", "f8"), ("max_s", "f8"), ("stddev_s", "f8"), ("rse", "f8"),
    ("converged", "i1"), ("stop_reason", "str"), ("peak_bytes", "i8"), ("started_unix", "f8"), ("wall_s", "f8"),
]


def canonical(obj):
    """attnbench's canonical JSON text: no spaces, keys in declaration order."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def task_params(batch, heads, seq_len, head_dim, causal):
    """The `synthetic` task's parameters with every default filled in, in its declaration order; check_every
    as suites/gpu.json sets it (every (L/1K)-th row checked), so that both files name the same cells."""
    return canonical(dict(batch=batch, heads=heads, kv_heads=0, model_heads=0, seq_len=seq_len, kv_len=0,
                          head_dim=head_dim, value_dim=0, dtype="bf16", causal=causal, scale=0.0,
                          check_every=max(1, seq_len // 1024)))


def new_cell(index, label, params, shape, seed, device, threads):
    b, h, L, D, causal = shape["batch"], shape["heads"], shape["seq_len"], shape["head_dim"], shape["causal"]
    tp = task_params(b, h, L, D, causal)
    mp = canonical(params)
    flops = 2.0 * b * h * L * L * (D + D) / (2 if causal else 1)
    return dict(index=index, id=label + mp + "|synthetic" + tp, method=label, method_name=label, family="exact",
                method_params=mp, task="synthetic", task_kind="efficiency", task_params=tp,
                seed=int(hashlib.sha256((str(seed) + tp).encode()).hexdigest()[:15], 16), status="", reason="",
                device=device, threads=threads, batch=b, heads=h, kv_heads=h, q_len=L, kv_len=L, head_dim=D,
                value_dim=D, dtype="bf16", mask="causal" if causal else "full", causal=1 if causal else 0,
                flops=flops, bytes=2.0 * 4 * b * h * L * D, warmup=0, samples=0, median_s=0.0, mean_s=0.0,
                min_s=0.0, max_s=0.0, stddev_s=0.0, rse=0.0, converged=0, stop_reason="", peak_bytes=0,
                started_unix=time.time(), wall_s=0.0, _samples=[], _metrics=[])


def write_results(path, manifest, environment, expected_cells, cells, h5py, np):
    """The whole file to PATH.tmp, then renamed over PATH (a crash leaves the previous complete file)."""
    text = h5py.string_dtype(encoding="utf-8")
    kinds = {"str": text, "i8": "<i8", "u8": "<u8", "i1": "i1", "f8": "<f8"}
    cell_dtype = np.dtype([(name, kinds[kind]) for name, kind in CELL_COLUMNS])
    sample_dtype = np.dtype([("cell", "<i8"), ("sample", "<i8"), ("seconds", "<f8")])
    metric_dtype = np.dtype([("cell", "<i8"), ("name", text), ("value", "<f8")])
    rows = [tuple(c[name] for name, _ in CELL_COLUMNS) for c in cells]
    samples = [(c["index"], i, s) for c in cells for i, s in enumerate(c["_samples"])]
    metrics = [(c["index"], name, value) for c in cells for name, value in c["_metrics"]]

    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as f:
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["manifest"] = json.dumps(manifest, indent=1)
        f.attrs["manifest_name"] = manifest["name"]
        f.attrs["manifest_path"] = ""
        f.attrs["environment"] = canonical(environment)
        f.attrs.create("expected_cells", np.int64(expected_cells), dtype="<i8")
        f.attrs["created_by"] = SCRIPT
        for name, dtype, data in (("cells", cell_dtype, rows), ("samples", sample_dtype, samples),
                                  ("metrics", metric_dtype, metrics)):
            n = len(data)
            f.create_dataset(name, shape=(n,), maxshape=(None,), chunks=(min(max(n, 1), 4096),), dtype=dtype,
                             data=np.array(data, dtype=dtype) if n else None)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def finish_cell(cell, stats, samples, policy, metrics, peak, t0):
    for key in ("warmup", "samples", "median_s", "mean_s", "min_s", "max_s", "stddev_s", "rse", "stop_reason"):
        cell[key] = stats[key]
    cell["converged"] = 1 if stats["converged"] else 0
    cell["_samples"] = list(samples)
    cell["peak_bytes"] = int(peak)
    if stats["stop_reason"] == "timeout":
        cell["status"] = "failed"
        cell["reason"] = "timeout: %d run(s) took longer than the cell limit of %g s (timing.timeout_s)" % (
            stats["warmup"] + stats["samples"], policy.timeout_s)
    else:
        cell["status"] = "ok"
        cell["_metrics"] = metrics
    cell["wall_s"] = time.monotonic() - t0


# --- the schema self-test: no torch, no GPU, synthetic numbers --------------------------------------

class SyntheticSampler:
    """Fixed numbers, one of them discarded, so the policy code runs and the file has every part."""

    def __init__(self):
        self.values = iter([1.000e-3, None, 1.001e-3, 0.999e-3, 1.000e-3, 1.0005e-3] + [1.0e-3] * 100)

    def warmup(self):
        pass

    def sample(self, cold):
        return next(self.values)


def selftest_schema(path, h5py, np):
    policy = Policy(warmup=1, min_samples=5, max_time_s=10.0)
    stats, samples = measure(SyntheticSampler(), policy)
    label = "schema_test_NOT_A_MEASUREMENT"
    cell = new_cell(0, label, dict(synthetic_numbers=True), SELFTEST_SHAPE, 1, "cuda:0", 1)
    metrics = [("rel_l2", 1.0e-3), ("max_abs", 2.0e-3), ("discarded_samples", float(stats["discarded"])),
               ("device.sm_clock_mhz.before", 1000.0), ("device.sm_clock_mhz.after", 1000.0)]
    finish_cell(cell, stats, samples, policy, metrics, 0, time.monotonic())
    manifest = dict(name="torch_sdpa_schema_selftest",
                    description="SCHEMA SELF-TEST of " + SCRIPT + ": one cell of synthetic numbers, not a measurement",
                    device="cuda", timing=policy.as_json(), methods=[dict(name=label)],
                    tasks=[dict(name="synthetic", params=SELFTEST_SHAPE)])
    environment = dict(schema_selftest=True, script=SCRIPT,
                       note="synthetic numbers written by --selftest-schema to check the file layout; "
                            "not a measurement of anything",
                       hostname=socket.gethostname(), python=platform.python_version(), h5py=h5py.__version__)
    write_results(path, manifest, environment, 1, [cell], h5py, np)
    print("wrote %s: one synthetic cell (schema self-test, not a measurement)" % path)


# --- timing on the GPU ------------------------------------------------------------------------------

class TorchSampler:
    """CUDA events around a sample's runs, queued while the stream is held by torch.cuda._sleep."""

    def __init__(self, torch, fn, flush, nvml, nvml_handle, reference_mhz, hold):
        self.torch, self.fn, self.flush, self.nvml, self.h = torch, fn, flush, nvml, nvml_handle
        self.reference_mhz, self.hold = reference_mhz, hold
        self.start = torch.cuda.Event(enable_timing=True)
        self.stop = torch.cuda.Event(enable_timing=True)
        self.primed, self.estimate, self.flush_value, self.batch = False, 0.0, 0, 1
        self.hold_too_short = self.throttled = 0

    def warmup(self):
        self.primed = True
        self.start.record()
        self.fn()
        self.stop.record()
        self.stop.synchronize()
        t = self.start.elapsed_time(self.stop) * 1e-3
        self.estimate = min(self.estimate, t) if self.estimate > 0 else t

    def sample(self, cold):
        torch = self.torch
        if not self.primed:  # policy warmup 0: one untimed run estimates the hot batch size
            self.warmup()
        n = 1 if cold else hot_batch_size(self.estimate)
        self.batch = n
        if cold:
            self.flush_value = (self.flush_value + 1) & 0x7FFFFFFF
            self.flush.fill_(self.flush_value)
        torch.cuda.synchronize()
        held = self.hold.cycles > 0
        if held:
            torch.cuda._sleep(self.hold.cycles)
        self.start.record()
        first = min(n, 2) if held else n
        for _ in range(first):
            self.fn()
        # Still pending: the first runs were queued before the timed region began.
        started_early = held and self.start.query()
        for _ in range(first, n):
            self.fn()
        self.stop.record()
        self.stop.synchronize()
        t = self.start.elapsed_time(self.stop) * 1e-3 / n
        if started_early:
            self.hold_too_short += 1
            self.hold.lengthen()
            return None
        if self.h is not None and self.reference_mhz:
            mhz = self.nvml.sm_clock(self.h)
            if mhz is not None and not clock_ok(mhz, self.reference_mhz):
                self.throttled += 1
                time.sleep(THROTTLE_RECOVERY_S)
                return None
        return t


class Hold:
    """How long torch.cuda._sleep holds the stream: calibrated in cycles, doubled when it proved too short."""

    def __init__(self, torch, seconds=2e-3, max_seconds=0.2):
        self.cycles, self.max_cycles, self.note = 0, 0, ""
        if not hasattr(torch.cuda, "_sleep"):
            self.note = "torch.cuda._sleep is missing: launch overhead is inside the events"
            return
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda._sleep(1000)
        torch.cuda.synchronize()
        start.record()
        torch.cuda._sleep(10_000_000)
        stop.record()
        stop.synchronize()
        self.cycles_per_s = 1e7 / (start.elapsed_time(stop) * 1e-3)
        self.cycles = int(seconds * self.cycles_per_s)
        self.max_cycles = int(max_seconds * self.cycles_per_s)

    def lengthen(self):
        self.cycles = min(2 * self.cycles, self.max_cycles)


def reference_fp64(torch, q, k, v, causal):
    """The float64 oracle on the GPU, in blocks of queries so that a score block stays under 1 GiB."""
    B, H, L, D = q.shape
    scale = 1.0 / math.sqrt(D)
    out = torch.empty((B, H, L, v.shape[-1]), dtype=torch.float64, device=q.device)
    block = max(1, min(L, (1 << 27) // L))
    cols = torch.arange(L, device=q.device)
    for b in range(B):
        for h in range(H):
            K, V = k[b, h].double(), v[b, h].double()
            for q0 in range(0, L, block):
                Q = q[b, h, q0:q0 + block].double()
                S = (Q @ K.T) * scale
                if causal:
                    rows = torch.arange(q0, q0 + Q.shape[0], device=q.device)
                    S.masked_fill_(cols[None, :] > rows[:, None], -math.inf)
                out[b, h, q0:q0 + Q.shape[0]] = torch.softmax(S, dim=-1) @ V
    return out


def method_call(torch, label, q, k, v, causal, flex):
    """(setup context, function) of one method, or raises Unsupported."""
    import contextlib
    import torch.nn.functional as F
    if label in ("torch_flash", "torch_cudnn"):
        from torch.nn.attention import SDPBackend, sdpa_kernel
        name = "FLASH_ATTENTION" if label == "torch_flash" else "CUDNN_ATTENTION"
        if not hasattr(SDPBackend, name):
            raise Unsupported("this PyTorch (%s) has no SDPBackend.%s" % (torch.__version__, name))
        return sdpa_kernel([getattr(SDPBackend, name)]), lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    if flex is None:
        raise Unsupported("this PyTorch (%s) has no FlexAttention (torch.nn.attention.flex_attention)" % torch.__version__)
    compiled, create_block_mask = flex
    L = q.shape[2]
    mask = None
    if causal:
        mask = create_block_mask(lambda b, h, qi, ki: qi >= ki, None, None, L, L, device=q.device)
    return contextlib.nullcontext(), lambda: compiled(q, k, v, block_mask=mask)


class Unsupported(Exception):
    pass


METHOD_PARAMS = {"torch_flash": dict(sdpa_backend="FLASH_ATTENTION"), "torch_cudnn": dict(sdpa_backend="CUDNN_ATTENTION"),
                 "flex": dict(compiled=True)}


def run(args, torch, h5py, np):
    t_script = time.monotonic()
    device = torch.device(args.device)
    torch.cuda.set_device(device)
    index = device.index or 0
    props = torch.cuda.get_device_properties(index)
    nvml = Nvml()
    pci = None
    if all(hasattr(props, a) for a in ("pci_domain_id", "pci_bus_id", "pci_device_id")):
        pci = "%08X:%02X:%02X.0" % (props.pci_domain_id, props.pci_bus_id, props.pci_device_id)
    uuid = ("GPU-" + str(props.uuid)) if hasattr(props, "uuid") else None
    handle = nvml.handle(pci, uuid) if nvml.lib else None
    reference_mhz = nvml.reference_sm_clock(handle) if handle is not None else 0

    l2 = int(getattr(props, "L2_cache_size", 0) or 0)
    flush_note = ""
    if l2 <= 0:
        l2 = 128 << 20
        flush_note = "this PyTorch does not report the L2 size; flushed 2 x 128 MiB"
    flush = torch.empty(2 * l2 // 4, dtype=torch.int32, device=device)
    hold = Hold(torch)

    flex = None
    try:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention
        import torch._dynamo
        for knob in ("cache_size_limit", "recompile_limit", "accumulated_cache_size_limit"):
            if hasattr(torch._dynamo.config, knob):  # one compilation per shape, 24 shapes
                setattr(torch._dynamo.config, knob, max(getattr(torch._dynamo.config, knob), 256))
        flex = (torch.compile(flex_attention, dynamic=False), create_block_mask)
    except ImportError:
        pass

    policy = Policy(warmup=args.warmup, min_samples=args.min_samples, max_samples=args.max_samples,
                    max_noise=args.max_noise, max_time_s=args.max_time, cold_cache=not args.hot, timeout_s=args.timeout)
    shapes = [dict(batch=max(1, args.tokens // L), heads=args.hidden // D, seq_len=L, head_dim=D, causal=c)
              for L in args.lengths for D in args.head_dims for c in (False, True)]
    methods = list(args.methods)
    expected = len(shapes) * len(methods)

    git = ""
    try:
        git = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    environment = dict(
        script=SCRIPT, hostname=socket.gethostname(),
        time_utc=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        os=platform.platform(), python=platform.python_version(), torch=torch.__version__,
        torch_cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(), git_revision=git,
        threads=torch.get_num_threads(), seed=args.seed, device="cuda:%d" % index,
        device_info=dict(backend="torch", index=index, name=props.name,
                         compute_capability="%d.%d" % (props.major, props.minor), sm_count=props.multi_processor_count,
                         global_memory_bytes=props.total_memory, l2_cache_bytes=l2, l2_flush_bytes=2 * l2,
                         pci_bus_id=pci or "", nvml=nvml.info(handle)),
        timing=dict(clock="CUDA events on the current stream",
                    launch_overhead=hold.note or "hidden: torch.cuda._sleep holds the stream while a sample is "
                                                 "queued; a sample that started early is discarded",
                    hold_initial_s=2e-3, cold="the L2 is written over (twice its size) before every sample",
                    flush_note=flush_note, hot_batch_target_s=HOT_BATCH_TARGET_S, hot_max_batch=MAX_BATCH,
                    throttle_threshold=THROTTLE_THRESHOLD, throttle_recovery_s=THROTTLE_RECOVERY_S))
    try:
        import triton
        environment["triton"] = triton.__version__
    except ImportError:
        pass
    manifest = dict(name="torch_sdpa", description="PyTorch attention measured by " + SCRIPT + " on the shapes of "
                    "suites/gpu.json", seed=args.seed, device="cuda", baseline="torch_flash",
                    timing=policy.as_json(), methods=[dict(name=m, params=METHOD_PARAMS[m]) for m in methods],
                    tasks=[dict(name="synthetic", params=s) for s in shapes])

    cells = []
    threads = torch.get_num_threads()
    write_results(args.output, manifest, environment, expected, cells, h5py, np)
    for si, shape in enumerate(shapes):
        if args.deadline_s and time.monotonic() - t_script > args.deadline_s:
            print("torch_sdpa.py: deadline of %g s reached: %d of %d cells written" % (
                args.deadline_s, len(cells), expected), file=sys.stderr)
            break
        B, H, L, D, causal = shape["batch"], shape["heads"], shape["seq_len"], shape["head_dim"], shape["causal"]
        tp = task_params(B, H, L, D, causal)
        gen = torch.Generator(device=device)
        gen.manual_seed(int(hashlib.sha256((str(args.seed) + tp).encode()).hexdigest()[:15], 16))
        inputs = [torch.randn((B, H, L, D), generator=gen, device=device, dtype=torch.float32).to(torch.bfloat16)
                  for _ in range(3)]
        ref = None
        for mi, label in enumerate(methods):
            cell = new_cell(si * len(methods) + mi, label, METHOD_PARAMS[label], shape, args.seed,
                            "cuda:%d" % index, threads)
            t0 = time.monotonic()
            try:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
                q, k, v = (t.clone() for t in inputs)
                context, fn = method_call(torch, label, q, k, v, causal, flex)
                with context:
                    with warnings.catch_warnings(record=True) as said:  # SDPA explains a refusal in warnings
                        warnings.simplefilter("always")
                        try:
                            fn()  # compiles (flex), picks kernels; set-up, not timed
                            torch.cuda.synchronize()
                        except RuntimeError as e:
                            if "No available kernel" in str(e) or "not supported" in str(e).lower():
                                why = [str(w.message).strip().splitlines()[0] for w in said if str(w.message).strip()]
                                raise Unsupported("; ".join(why[:2] + [str(e).strip().splitlines()[0]])) from e
                            raise
                    before = nvml.state(handle) if handle is not None else {}
                    sampler = TorchSampler(torch, fn, flush, nvml, handle, reference_mhz, hold)
                    stats, samples = measure(sampler, policy)
                    after = nvml.state(handle) if handle is not None else {}
                    out = fn()
                    torch.cuda.synchronize()
                peak = torch.cuda.max_memory_allocated() - base
                metrics = []
                if not bool(torch.isfinite(out).all()):
                    cell.update(status="failed", reason="output has NaN or Inf values")
                elif stats["stop_reason"] != "timeout":
                    if args.fidelity:
                        if ref is None:
                            ref = reference_fp64(torch, *inputs, causal)
                        diff = out.double() - ref
                        rel = float(diff.norm() / ref.norm())
                        metrics += [("rel_l2", rel), ("max_abs", float(diff.abs().max()))]
                    metrics.append(("discarded_samples", float(stats["discarded"])))
                    metrics += [("device.%s.before" % k_, v_) for k_, v_ in before.items()]
                    metrics += [("device.%s.after" % k_, v_) for k_, v_ in after.items()]
                if cell["status"] != "failed":
                    finish_cell(cell, stats, samples, policy, metrics, peak, t0)
                del q, k, v, out
            except Unsupported as e:
                cell.update(status="unsupported", reason=str(e))
            except torch.cuda.OutOfMemoryError:
                cell.update(status="failed", reason="out of memory")
            except Exception as e:  # a method's error fails its cell; the run goes on
                cell.update(status="failed", reason="error: " + (str(e).strip().splitlines() or [type(e).__name__])[0])
            cell["wall_s"] = time.monotonic() - t0
            cells.append(cell)
            write_results(args.output, manifest, environment, expected, cells, h5py, np)
            line = "[%d/%d] %s | synthetic L%d D%d H%d B%d %s | " % (len(cells), expected, label, L, D, H, B,
                                                                   "causal" if causal else "full")
            if cell["status"] == "ok":
                line += "ok %.4g ms ±%.2f%% (%d samples, %s)" % (cell["median_s"] * 1e3, cell["rse"] * 100,
                                                                 cell["samples"], cell["stop_reason"])
            else:
                line += "%s: %s" % (cell["status"], cell["reason"])
            print(line, file=sys.stderr, flush=True)
        del inputs, ref
        torch.cuda.empty_cache()
    ok = sum(c["status"] == "ok" for c in cells)
    print("%d of %d cells: %d ok; results: %s" % (len(cells), expected, ok, args.output))
    return 0


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", help="result file (HDF5) to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing result file")
    p.add_argument("--device", default="cuda:0")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--lengths", nargs="+", type=int, default=[1024, 2048, 4096, 8192, 16384, 32768])
    p.add_argument("--head-dims", nargs="+", type=int, default=[64, 128])
    p.add_argument("--tokens", type=int, default=16384, help="batch x seq_len (batch at least 1)")
    p.add_argument("--hidden", type=int, default=2048, help="heads x head_dim")
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--min-samples", type=int, default=10)
    p.add_argument("--max-samples", type=int, default=1000)
    p.add_argument("--max-noise", type=float, default=GPU_MAX_NOISE)
    p.add_argument("--max-time", type=float, default=2.0, help="seconds of sampling per cell")
    p.add_argument("--timeout", type=float, default=120.0, help="a cell whose runs take longer in all fails")
    p.add_argument("--hot", action="store_true", help="hot runs (batched, no L2 flush) instead of cold")
    p.add_argument("--no-fidelity", dest="fidelity", action="store_false",
                   help="skip rel_l2/max_abs against a float64 oracle computed on the GPU")
    p.add_argument("--deadline-s", type=float, default=0, help="start no cell after this many seconds (0: none)")
    p.add_argument("--selftest-schema", metavar="OUT.h5",
                   help="write a one-cell file of synthetic numbers (no torch, no GPU) to test the file layout")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.selftest_schema:
        h5py, np = import_h5py()
        selftest_schema(args.selftest_schema, h5py, np)
        return 0
    if not args.output:
        fail("-o OUT.h5 is required (or --selftest-schema OUT.h5)")
    try:
        import torch
    except ImportError as e:
        fail("PyTorch is not installed (%s); run this script where PyTorch with CUDA is (pip install torch)" % e)
    if not torch.cuda.is_available():
        fail("PyTorch %s sees no CUDA device (torch.cuda.is_available() is false)" % torch.__version__)
    h5py, np = import_h5py()
    if os.path.exists(args.output) and not args.overwrite:
        fail(args.output + " exists; pass --overwrite to replace it")
    if os.path.dirname(args.output):
        os.makedirs(os.path.dirname(args.output), exist_ok=True)
    return run(args, torch, h5py, np)


def import_h5py():
    try:
        import h5py
        import numpy as np
    except ImportError as e:
        fail("h5py is not installed (%s); install python3-h5py or pip install h5py" % e)
    return h5py, np


if __name__ == "__main__":
    sys.exit(main())
