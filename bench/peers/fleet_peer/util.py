"""Small helpers shared by the peer: JSON that Node can parse, the CPU's name, the log line."""
import math
import platform
import sys


def json_safe(v):
    """NaN/inf are not JSON that Node can parse: they become null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, list):
        return [json_safe(x) for x in v]
    return v


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def log(msg):
    print(f"fleet_torch: {msg}", file=sys.stderr, flush=True)
