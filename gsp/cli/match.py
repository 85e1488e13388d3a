"""`gsp match`: record linkage on CSV files, without the platform."""

from __future__ import annotations

import argparse
from pathlib import Path

from gsp.cli._common import Commands, add_actions, add_command
from schemas.settings import Settings

__all__ = ["register", "run"]


def register(commands: Commands) -> None:
    match = add_command(
        commands, "match", summary="record linkage: evaluate a model on CSV files, train it with review decisions",
        about="The probabilistic matcher of the match stage, on files; needs no broker.",
        example=["gsp match generate --out linkage --registry 5000",
                 "gsp match evaluate --settings streams/linkage/settings/vn_identity.json "
                 "--left linkage/left.csv --right linkage/right.csv --truth linkage/links.csv"])
    actions = add_actions(match)
    evaluate = add_command(
        actions, "evaluate", summary="precision, recall, F1 and records/s on CSV files with known links",
        about="""\
            Trains the model by EM on the two files (or from the true links with --supervised, or loads
            --model), links every right record to the left file, and scores the links against --truth.""",
        example=["gsp match evaluate --settings streams/linkage/settings/vn_identity.json --left linkage/left.csv "
                 "--right linkage/right.csv --truth linkage/links.csv --json",
                 "gsp match evaluate … --save-model vn.json && GSP_LINKAGE_MODEL=vn.json gsp serve"])
    evaluate.add_argument("--settings", required=True, metavar="FILE", help="linkage settings JSON (names the CSV columns to use)")
    evaluate.add_argument("--left", required=True, metavar="CSV", help="registry CSV")
    evaluate.add_argument("--right", metavar="CSV",
                          help="records to link, CSV (not with dedupe_only settings: --left is linked to itself)")
    evaluate.add_argument("--truth", required=True, metavar="CSV",
                          help="true links, CSV: columns right_id and left_id (or the settings' unique id columns)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--batch-size", type=int, default=1000, help="micro-batch size for scoring")
    evaluate.add_argument("--model", metavar="FILE", help="score with this trained model file instead of training")
    evaluate.add_argument("--save-model", metavar="FILE", help="save the trained model (settings and parameters) here")
    evaluate.add_argument("--supervised", action="store_true", help="estimate m from the true links instead of EM")
    train = add_command(
        actions, "train", summary="fold stewards' review decisions (gsp review export) into a model",
        about="""\
            Each ACCEPTED decision counts, at the levels its pair reached, into the model's m; the model's own m
            weighs as --strength pairs. u is kept (rejected pairs are near misses, not random pairs). Prints how
            many of the accepted and rejected pairs the model matches before and after.""",
        example=["gsp review export --out decisions.csv && gsp match train --labels decisions.csv --out vn.json",
                 "GSP_LINKAGE_MODEL=vn.json gsp serve"])
    train.add_argument("--labels", required=True, type=Path, metavar="CSV", help="decisions, as gsp review export writes")
    train.add_argument("--model", type=Path, metavar="FILE", help="model to start from (default: the shipped one)")
    train.add_argument("--out", required=True, type=Path, metavar="FILE", help="where to write the new model")
    train.add_argument("--strength", type=float, default=100.0, help="the starting model's m counts as this many pairs")
    train.add_argument("--json", action="store_true", help="print one JSON object")
    generate = add_command(
        actions, "generate", summary="write labelled Vietnamese linkage data (left, right, links CSV)",
        example=["gsp match generate --out linkage", "gsp match generate --out small --registry 1000 --seed 3"])
    generate.add_argument("--out", required=True, type=Path, metavar="DIR", help="directory to write into")
    generate.add_argument("--registry", type=int, default=100_000, help="registry records")
    generate.add_argument("--records", type=int, help="records to link (default: as many as the registry)")
    generate.add_argument("--match-share", type=float, default=0.8, help="share of records with a true match")
    generate.add_argument("--seed", type=int, default=7, help="generator seed: the same seed, the same files")
    match.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from gsp.tools.linkage_eval import run_evaluate, run_generate, run_train

    if args.action == "evaluate":
        return run_evaluate(args.settings, args.left, args.right, args.truth, as_json=args.json,
                            batch_size=args.batch_size, model=args.model, save_model=args.save_model,
                            supervised=args.supervised)
    if args.action == "train":
        return run_train(args.labels, args.out, model=args.model, strength=args.strength, as_json=args.json)
    return run_generate(args.out, registry=args.registry, records=args.records, match_share=args.match_share,
                        seed=args.seed)
