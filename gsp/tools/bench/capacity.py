"""The capacity model of docs/capacity.md: memory, partitions, workers and hours for a national run.

    python -m gsp.tools.bench.capacity --bytes-per-entry 620 --records-per-core-s 1500 [--people 100e6]
        [--verifications 95.6e6] [--worker-memory-gib 8] [--hours 24] [--base-mib 300] [--json]

`gsp bench` calls `model()` with the figures it measured in the same run (bytes per registry entry,
end-to-end records per second per core) and prints the result beside its inputs, so an operator
can redo it with their own figures. The formulas, with R people, b bytes per registry entry,
B the base memory of a worker process, M the memory a worker may use, V verifications, r records
per second per core (one core per worker), H the hours allowed:

    registry memory                  R * b
    workers for memory       W_mem = ceil(R * b / (M - B))
    workers for time        W_time = ceil(V / (r * 3600 * H))
    workers                      W = max(W_mem, W_time)
    memory per worker                B + R * b / W
    partitions                   P = 2 * W, rounded up to a power of two (room to double the workers
                                     without re-partitioning; a partition is the unit a worker owns)
    hours at W workers               V / (r * W) / 3600
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Inputs", "model", "render"]

GIB = 1024**3
MIB = 1024**2


@dataclass(frozen=True)
class Inputs:
    bytes_per_entry: float  # registry replica (search index + exact-check entry) per citizen, measured
    records_per_core_s: float  # records through clean -> match -> share per second per core, measured
    people: float = 100e6  # Vietnam's population registry, about 100 million
    verifications: float = 95.6e6  # mobile subscribers verified against it (the seed's figure)
    worker_memory_gib: float = 8.0  # what one worker process may hold
    hours: float = 24.0  # the time the run may take
    base_mib: float = 150.0  # a worker's memory before any registry entry: 107 MiB measured idle, room for buffers


def _power_of_two(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(n, 1))))


def model(inputs: Inputs) -> dict[str, Any]:
    """Workers, partitions, memory per worker and hours for `inputs` (see the module's docstring)."""
    registry = inputs.people * inputs.bytes_per_entry
    usable = inputs.worker_memory_gib * GIB - inputs.base_mib * MIB
    if usable <= 0:
        raise ValueError("the worker memory must exceed its base memory")
    if inputs.records_per_core_s <= 0 or inputs.hours <= 0:
        raise ValueError("records per core and hours must be positive")
    w_mem = math.ceil(registry / usable)
    w_time = math.ceil(inputs.verifications / (inputs.records_per_core_s * 3600 * inputs.hours))
    workers = max(w_mem, w_time, 1)
    return {
        "inputs": asdict(inputs),
        "registry_gib": round(registry / GIB, 1),
        "workers_for_memory": w_mem,
        "workers_for_time": w_time,
        "workers": workers,
        "partitions": _power_of_two(2 * workers),
        "memory_per_worker_gib": round((inputs.base_mib * MIB + registry / workers) / GIB, 2),
        "hours_at_workers": round(inputs.verifications / (inputs.records_per_core_s * workers) / 3600, 2),
        "one_worker_full_replica_gib": round((inputs.base_mib * MIB + registry) / GIB, 1),
    }


def render(result: dict[str, Any]) -> str:
    i = result["inputs"]
    return "\n".join([
        f"  capacity model (docs/capacity.md): {i['people']:,.0f} people, {i['verifications']:,.0f} verifications "
        f"in {i['hours']:g} h, workers of {i['worker_memory_gib']:g} GiB (base {i['base_mib']:g} MiB)",
        f"    inputs measured in this run: {i['bytes_per_entry']:,.0f} B per registry entry, "
        f"{i['records_per_core_s']:,.0f} records/s per core",
        f"    registry {result['registry_gib']} GiB; workers: {result['workers_for_memory']} for memory, "
        f"{result['workers_for_time']} for time -> {result['workers']} workers, {result['partitions']} partitions",
        f"    memory per worker {result['memory_per_worker_gib']} GiB (a full replica in every worker: "
        f"{result['one_worker_full_replica_gib']} GiB); run time at {result['workers']} workers "
        f"{result['hours_at_workers']} h",
    ]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gsp.tools.bench.capacity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bytes-per-entry", type=float, required=True)
    parser.add_argument("--records-per-core-s", type=float, required=True)
    parser.add_argument("--people", type=float, default=Inputs.people)
    parser.add_argument("--verifications", type=float, default=Inputs.verifications)
    parser.add_argument("--worker-memory-gib", type=float, default=Inputs.worker_memory_gib)
    parser.add_argument("--hours", type=float, default=Inputs.hours)
    parser.add_argument("--base-mib", type=float, default=Inputs.base_mib)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        result = model(Inputs(args.bytes_per_entry, args.records_per_core_s, args.people, args.verifications,
                              args.worker_memory_gib, args.hours, args.base_mib))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result) if args.json else render(result), end="\n" if args.json else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
