"""Partitioned linkage benchmark: the registry index spread over W worker processes, records scattered, partials merged.

    python -m gsp.tools.bench.partitioned [--registry 200000] [--records N] [--workers 1 2 4] [--partitions 4]
                                          [--batch-size 1000] [--model FILE | --train] [--json]

Generates a registry and records (`gsp.tools.synth.linkage.generate_linkage(registry, seed=7)`),
then for each W starts W worker processes (multiprocessing, spawn). Partition p of P (the registry
changelog's, `streams.linkage.partition.partition_of` on the personal id) belongs to worker p mod W;
each worker indexes the rows of its partitions (`PartitionIndex`, traced with tracemalloc around the
build, as `gsp.tools.bench.linkage` measures an index; the rows arrive during the trace here, so the
personal-id strings the index keeps, about 60 bytes an entry, are counted, which linkage.py's figure
leaves out), the term counts are added up and handed back, and every micro-batch of records goes
to every worker, whose partials the coordinator merges.

One model for every W: the shipped `streams/linkage/models/vn_identity.model.json`, or with
`--train` one trained on the whole index. The baseline, measured in the same run, is today's worker:
`score_batch` on one whole index in one process (filled in personal-id order, so that equal best
weights go to the same entry as in the partitions). Reported per W: entries, index bytes (traced)
and RSS per worker, wall seconds and records/s of scoring (and their ratio to the baseline's),
records whose verdict or chosen personal id differs from the first W's and from the baseline's
(must be 0), the largest |p difference|, precision, recall and F1 of MATCHED against the true links.
Every worker encodes and looks up every record, so the scoring work per record does not shrink with
W (only the pairs compared do); on a machine with fewer cores than workers the figures measure the
fan-out's cost, not a speed-up. Exit status 1 when any verdict differs.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import multiprocessing
import os
import pickle
import platform
import queue
import sys
import time
import tracemalloc
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gsp.errors import UserError
from gsp.tools.synth.linkage import generate_linkage
from schemas.envelope import Verdict
from streams.linkage import LinkageError, Model, RegistryIndex, Settings, load_settings, score_batch, train
from streams.linkage.config import DEFAULT_SETTINGS
from streams.linkage.partition import Partials, PartitionIndex, TermCounts, merge, partition_of, score_partial
from streams.linkage.score import Link
from streams.linkage.text import parse_name, province_code, token_forms
from streams.matching import DEFAULT_MODEL

_WAIT_S = 900.0  # longest silence from live workers before giving up (a 200,000-entry traced build takes minutes)
_IN_FLIGHT = 3  # micro-batches sent ahead of the merge, so workers never wait for the coordinator
_ROWS_PER_MESSAGE = 10_000


def _log(message: str) -> None:
    print(f"[partitioned] {message}", file=sys.stderr, flush=True)


def _rss_bytes() -> int | None:
    """Resident memory of this process now (Linux), None elsewhere."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _release_freed() -> None:
    """Hand memory freed to malloc back to the OS (glibc): tracemalloc's own traces, freed when it stops,
    would otherwise stay in the RSS of a traced build (268 MB against 138 MB untraced at 200,000 entries)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _clear_caches() -> None:
    for cached in (parse_name, token_forms, province_code):
        cached.cache_clear()
    gc.collect()


def _build(model: Model, entries: int, inbox: Any) -> tuple[PartitionIndex, dict[str, Any]]:
    """The worker's index, filled from the row messages as they come (so no copy of the rows outlives its
    message), and what it holds: tracemalloc's count around the build."""
    _clear_caches()
    started = time.perf_counter()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        index = PartitionIndex(model.settings, capacity=entries + 1024)
        while (message := inbox.get())[0] == "rows":
            index.add_many(message[1])
            del message
        _clear_caches()  # name caches are the process's, not the index's
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        _release_freed()
    return index, {"entries": index.entries, "index_bytes": held,
                   "build_seconds_traced": round(time.perf_counter() - started, 2)}


def _worker(number: int, model_json: Mapping[str, Any], entries: int, inbox: Any, outbox: Any) -> None:
    """One worker: its partitions' rows in, its index built, then partials for every batch until told to stop."""
    try:
        model = Model.from_json(model_json)
        idle = _rss_bytes()
        index, stats = _build(model, entries, inbox)
        stats |= {"rss_idle": idle, "rss_built": _rss_bytes()}
        outbox.put(("built", number, stats, index.local_counts()))
        index.use_counts(inbox.get()[1])
        scoring = 0.0
        while (message := inbox.get())[0] == "batch":
            started = time.process_time()
            partials = score_partial(index, model, pickle.loads(message[2]))
            scoring += time.process_time() - started
            outbox.put(("partials", number, message[1], partials))
        outbox.put(("stopped", number, {"rss_scored": _rss_bytes(), "scoring_cpu_seconds": round(scoring, 3)}, None))
    except Exception as exc:  # reported to the coordinator, which stops the run with it
        outbox.put(("error", number, f"{type(exc).__name__}: {exc}", None))


class _Workers:
    """W worker processes, each with its inbox; one outbox for all their answers."""

    def __init__(self, model: Model, entries: Sequence[int]) -> None:
        context = multiprocessing.get_context("spawn")
        self.outbox = context.Queue()
        self.inboxes = [context.Queue() for _ in entries]
        self.processes = [context.Process(target=_worker, args=(n, model.to_json(), held, self.inboxes[n], self.outbox),
                                          daemon=True) for n, held in enumerate(entries)]
        for process in self.processes:
            process.start()

    def send(self, number: int, message: tuple[Any, ...]) -> None:
        self.inboxes[number].put(message)

    def receive(self, kind: str) -> tuple[int, Any, Any]:
        waited = 0.0
        while True:
            try:
                got, number, first, second = self.outbox.get(timeout=5.0)
                break
            except queue.Empty:
                waited += 5.0
            dead = [(n, p.exitcode) for n, p in enumerate(self.processes) if p.exitcode is not None]
            if dead:
                raise UserError(f"worker {dead[0][0]} exited (code {dead[0][1]}) while the run waited for {kind}")
            if waited >= _WAIT_S:
                raise UserError(f"no answer from the workers within {_WAIT_S:.0f} s (waiting for {kind})")
        if got == "error":
            raise UserError(f"worker {number} failed: {first}")
        if got != kind:
            raise UserError(f"worker {number} said {got!r} while {kind!r} was expected")
        return number, first, second

    def close(self) -> None:
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
                process.join(timeout=10)


def _scatter(workers: _Workers, model: Model, records: Sequence[Mapping[str, Any]], batch_size: int,
             label: str) -> tuple[list[Link], float]:
    """Every micro-batch to every worker, partials merged in batch order; the links and the wall seconds."""
    batches = [records[start:start + batch_size] for start in range(0, len(records), batch_size)]
    count = len(workers.inboxes)
    waiting: dict[int, list[Partials | None]] = {}
    merged: list[list[Link]] = [[] for _ in batches]
    sent = done = 0
    started = time.perf_counter()

    def send_next() -> None:
        nonlocal sent
        payload = pickle.dumps(list(batches[sent]), protocol=pickle.HIGHEST_PROTOCOL)
        for number in range(count):
            workers.send(number, ("batch", sent, payload))
        waiting[sent] = [None] * count
        sent += 1

    while sent < min(_IN_FLIGHT, len(batches)):
        send_next()
    while done < len(batches):
        number, seq, partials = workers.receive("partials")
        waiting[seq][number] = partials
        if any(p is None for p in waiting[seq]):
            continue
        merged[seq] = merge(model, [p for p in waiting.pop(seq) if p is not None])
        done += 1
        if sent < len(batches):
            send_next()
        if done % max(len(batches) // 10, 1) == 0:
            _log(f"{label}: {done * batch_size:,} of {len(records):,} records merged")
    return [link for links in merged for link in links], time.perf_counter() - started


def _run_workers(count: int, partitions: int, model: Model, registry: Sequence[dict[str, str]],
                 records: Sequence[Mapping[str, Any]], batch_size: int) -> tuple[dict[str, Any], list[Link]]:
    label = f"W={count}"
    owners = [p % count for p in range(partitions)]
    shares: list[list[dict[str, str]]] = [[] for _ in range(count)]
    for row in registry:
        shares[owners[partition_of(row["personal_id"], partitions)]].append(row)
    _log(f"{label}: starting {count} worker(s); {', '.join(f'{len(s):,}' for s in shares)} entries to index")
    workers = _Workers(model, [len(share) for share in shares])
    try:
        for number, share in enumerate(shares):
            for start in range(0, len(share), _ROWS_PER_MESSAGE):
                workers.send(number, ("rows", share[start:start + _ROWS_PER_MESSAGE]))
            workers.send(number, ("built",))
        stats: list[dict[str, Any]] = [{} for _ in range(count)]
        counts: list[TermCounts] = []
        for _ in range(count):
            number, built, local = workers.receive("built")
            stats[number] = built
            counts.append(local)
            _log(f"{label}: worker {number} indexed {built['entries']:,} entries, {built['index_bytes'] / 1e6:.1f} MB "
                 f"traced, in {built['build_seconds_traced']} s (tracemalloc on)")
        total = TermCounts.total(counts)
        for number in range(count):
            workers.send(number, ("counts", total))
        links, seconds = _scatter(workers, model, records, batch_size, label)
        for number in range(count):
            workers.send(number, ("stop",))
        for _ in range(count):
            number, after, _ = workers.receive("stopped")
            stats[number] |= after
    finally:
        workers.close()
    mb = 1e6
    result = {
        "workers": count,
        "partitions_per_worker": [owners.count(n) for n in range(count)],
        "entries_per_worker": [s["entries"] for s in stats],
        "index_bytes_per_worker": [s["index_bytes"] for s in stats],
        "index_mb_max": round(max(s["index_bytes"] for s in stats) / mb, 1),
        "bytes_per_entry": round(sum(s["index_bytes"] for s in stats) / max(len(registry), 1), 1),
        "rss_mb_idle": [round(s["rss_idle"] / mb, 1) if s["rss_idle"] else None for s in stats],
        "rss_mb_built": [round(s["rss_built"] / mb, 1) if s["rss_built"] else None for s in stats],
        "rss_mb_after_scoring": [round(s["rss_scored"] / mb, 1) if s["rss_scored"] else None for s in stats],
        "build_seconds_traced": [s["build_seconds_traced"] for s in stats],
        "worker_scoring_cpu_seconds": [s["scoring_cpu_seconds"] for s in stats],
        "scoring_seconds": round(seconds, 3),
        "records_per_second": round(len(records) / seconds) if seconds > 0 else None,
    }
    return result, links


def _quality(links: Sequence[Link], truth: Mapping[str, str]) -> dict[str, Any]:
    matched = [link for link in links if link.verdict is Verdict.MATCHED]
    tp = sum(1 for link in matched if truth.get(link.record_id or "") == link.personal_id)
    precision = tp / len(matched) if matched else 1.0
    recall = tp / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"matched": len(matched), "possible": sum(1 for link in links if link.verdict is Verdict.POSSIBLE),
            "precision": round(precision, 6), "recall": round(recall, 6), "f1": round(f1, 6)}


def _differences(links: Sequence[Link], reference: Sequence[Link]) -> tuple[int, float]:
    """Records whose verdict or chosen personal id differs, and the largest |p difference|."""
    differ = sum(1 for a, b in zip(links, reference, strict=True)
                 if a.verdict is not b.verdict or a.personal_id != b.personal_id or a.record_id != b.record_id)
    return differ, max((abs(a.match_probability - b.match_probability) for a, b in zip(links, reference, strict=True)),
                       default=0.0)


def _baseline(model: Model | None, settings: Settings, registry: Sequence[dict[str, str]],
              records: Sequence[Mapping[str, Any]], batch_size: int) -> tuple[Model, dict[str, Any], list[Link]]:
    """Today's worker: one whole index in one process (trains the model on it when none is given)."""
    started = time.perf_counter()
    index = RegistryIndex(settings, capacity=len(registry) + 1024)
    index.add_many(sorted(registry, key=lambda row: row["personal_id"]))
    indexed = time.perf_counter() - started
    _log(f"baseline: whole index of {len(index):,} entries in {indexed:.1f} s")
    training = None
    if model is None:
        started = time.perf_counter()
        model = train(index, records)
        training = round(time.perf_counter() - started, 2)
        _log(f"trained the model on the whole index in {training} s (match share {model.match_share})")
    started = time.perf_counter()
    links: list[Link] = []
    for start in range(0, len(records), batch_size):
        links.extend(score_batch(index, model, records[start:start + batch_size]))
    seconds = time.perf_counter() - started
    _log(f"baseline: score_batch on the whole index, {len(records) / seconds:,.0f} records/s")
    result = {"what": "score_batch on one whole index, one process", "entries": len(index),
              "index_seconds": round(indexed, 2), "training_seconds": training, "scoring_seconds": round(seconds, 3),
              "records_per_second": round(len(records) / seconds) if seconds > 0 else None}
    return model, result, links


def run(registry: int, *, records: int | None, workers: Sequence[int], partitions: int, batch_size: int,
        model_path: str | None, train_model: bool = False, seed: int = 7) -> dict[str, Any]:
    _log(f"generating {registry:,} registry people and {records or registry:,} records (seed {seed}) ...")
    started = time.perf_counter()
    data = generate_linkage(registry, records=records, seed=seed)
    generated = round(time.perf_counter() - started, 2)
    truth = dict(data.links)
    try:
        given = None if train_model else Model.load(model_path or DEFAULT_MODEL)
        settings = given.settings if given is not None else load_settings(DEFAULT_SETTINGS)
        model, baseline, reference = _baseline(given, settings, data.registry, data.records, batch_size)
    except LinkageError as exc:
        raise UserError(str(exc)) from exc
    gc.collect()
    baseline |= _quality(reference, truth)
    runs: list[dict[str, Any]] = []
    first: list[Link] | None = None
    for count in workers:
        result, links = _run_workers(count, partitions, model, data.registry, data.records, batch_size)
        first = first if first is not None else links
        result["differ_from_first_run"], result["max_p_difference_first_run"] = _differences(links, first)
        result["differ_from_baseline"], result["max_p_difference_baseline"] = _differences(links, reference)
        result |= _quality(links, truth)
        single = runs[0]["index_mb_max"] if runs else result["index_mb_max"]
        result["index_share_of_first_run"] = round(result["index_mb_max"] / single, 3) if single else None
        if result["records_per_second"] and baseline["records_per_second"]:
            result["ratio_to_baseline"] = round(result["records_per_second"] / baseline["records_per_second"], 3)
        runs.append(result)
        _log(f"W={count}: {result['records_per_second']:,} records/s, {result['differ_from_first_run']} verdicts "
             f"differ from W={workers[0]}, F1 {result['f1']}")
    return {
        "registry": len(data.registry), "records": len(data.records), "true_links": len(truth),
        "partitions": partitions, "batch_size": batch_size, "seed": seed,
        "model": "trained on the whole index" if train_model else str(model_path or DEFAULT_MODEL),
        "generate_seconds": generated, "baseline": baseline, "runs": runs,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }


def render(result: dict[str, Any]) -> str:
    base = result["baseline"]
    lines = [f"{result['records']:,} records against {result['registry']:,} registry entries, "
             f"{result['partitions']} partitions, micro-batches of {result['batch_size']:,}; model: {result['model']}",
             f"baseline (score_batch, whole index, one process): {base['records_per_second']:,} records/s, "
             f"precision {base['precision']}, recall {base['recall']}, F1 {base['f1']}", ""]
    rows = (("entries per worker", lambda r: " / ".join(f"{e:,}" for e in r["entries_per_worker"])),
            ("index MB per worker (traced)", lambda r: " / ".join(f"{b / 1e6:.1f}" for b in r["index_bytes_per_worker"])),
            ("largest index / first run's", lambda r: r["index_share_of_first_run"]),
            ("bytes per indexed entry", lambda r: r["bytes_per_entry"]),
            ("RSS MB per worker, idle", lambda r: " / ".join(str(m) for m in r["rss_mb_idle"])),
            ("RSS MB per worker, index built", lambda r: " / ".join(str(m) for m in r["rss_mb_built"])),
            ("  growth with the index", lambda r: " / ".join(
                f"{b - i:.1f}" if b and i else "?" for b, i in zip(r["rss_mb_built"], r["rss_mb_idle"], strict=True))),
            ("RSS MB per worker, after scoring", lambda r: " / ".join(str(m) for m in r["rss_mb_after_scoring"])),
            ("scoring wall s", lambda r: r["scoring_seconds"]),
            ("records/s (scatter, score, merge)", lambda r: f"{r['records_per_second']:,}"),
            ("  x baseline", lambda r: r.get("ratio_to_baseline")),
            ("CPU s in score_partial per worker", lambda r: " / ".join(str(s) for s in r["worker_scoring_cpu_seconds"])),
            ("verdicts/ids differing from first W", lambda r: r["differ_from_first_run"]),
            ("  max |p difference|", lambda r: f"{r['max_p_difference_first_run']:.1e}"),
            ("verdicts/ids differing from baseline", lambda r: r["differ_from_baseline"]),
            ("  max |p difference|", lambda r: f"{r['max_p_difference_baseline']:.1e}"),
            ("MATCHED / POSSIBLE", lambda r: f"{r['matched']:,} / {r['possible']:,}"),
            ("precision", lambda r: r["precision"]), ("recall", lambda r: r["recall"]), ("F1", lambda r: r["f1"]))
    cells = [["workers", *(str(r["workers"]) for r in result["runs"])]]
    cells += [[label, *(str(value(r)) for r in result["runs"])] for label, value in rows]
    widths = [max(len(row[i]) for row in cells) + 2 for i in range(len(cells[0]))]
    lines += [row[0].ljust(widths[0]) + "".join(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))
              for row in cells]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gsp.tools.bench.partitioned", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registry", type=int, default=200_000, help="registry people (200,000)")
    parser.add_argument("--records", type=int, default=None, help="records to link (default: as many as --registry)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="worker counts to run (1 2 4)")
    parser.add_argument("--partitions", type=int, default=4, help="registry partitions (4, GSP_PARTITIONS' default)")
    parser.add_argument("--batch-size", type=int, default=1000, help="records per micro-batch (1,000)")
    parser.add_argument("--seed", type=int, default=7)
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--model", default=None, help=f"model file (default {DEFAULT_MODEL})")
    chosen.add_argument("--train", action="store_true", help="train one model on the whole index instead")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    if min(args.registry, args.batch_size, args.partitions, *args.workers, args.records or 1) < 1:
        parser.error("--registry, --records, --workers, --partitions and --batch-size must be at least 1")
    if max(args.workers) > args.partitions:
        parser.error(f"--workers {max(args.workers)} exceeds --partitions {args.partitions}: a worker would own none")
    try:
        result = run(args.registry, records=args.records, workers=args.workers, partitions=args.partitions,
                     batch_size=args.batch_size, model_path=args.model, train_model=args.train, seed=args.seed)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result) if args.json else render(result), end="\n" if args.json else "")
    return 0 if all(r["differ_from_first_run"] == 0 and r["differ_from_baseline"] == 0 for r in result["runs"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
