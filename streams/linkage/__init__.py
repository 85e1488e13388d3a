"""Record linkage against the population registry: exact, probabilistic, and a review queue.

Pure: no Faust, no Kafka. Rules are data: a settings file names the fields, their comparison
levels, the blocking rules and the thresholds (`settings/vn_identity.json` for Vietnamese
identity data). Fellegi–Sunter weights come from m and u probabilities estimated without
labels (u from random pairs, m by EM) or from labelled pairs, with term-frequency adjustment;
settings and parameters are saved together as one versioned model file, so the model trained
today scores tomorrow's stream.

    settings = load_settings("vn_identity.json")
    index = RegistryIndex(settings)
    index.add_many(citizens)                      # add / update / remove as the registry changes
    model = train(index, records)                 # or Model.load("model.json")
    links = score_batch(index, model, records)    # Verdict MATCHED / POSSIBLE / NO_MATCH per record

The three-field check and what a record of a dataset becomes here are `streams.matching`'s;
this package knows no dataset, only the columns its settings name.

Partitioning for streaming. A Faust table, like a Kafka topic, is partitioned by its key, and
an agent only sees the partitions it owns. Exact lookups are keyed by personal id: a record
with a 12-digit id is routed (re-keyed) by that id and meets its registry entry in the
co-partitioned table, as the match stage does today. Blocking keys are not personal ids: an
entry lives in one personal-id partition but its blocking keys (given name + birth year,
phone, birth date, ...) can hash anywhere. So a probabilistic search needs either
  - its own index keyed by blocking key, fed from the registry changelog re-keyed by each
    blocking key (one message per entry and rule, deletes included), co-partitioned with a
    record stream re-keyed the same way; each partition then scores its candidates and the
    per-rule results are merged by record id (a repartition through a topic keyed by record
    id), or
  - a full replica of the index in every worker (every worker consumes all partitions of the
    registry changelog); records then need no repartition. At about 0.2-0.4 kB per entry
    (see gsp/tools/bench/linkage.py) that is the simpler choice up to tens of millions of entries.
Term frequencies are counts over the whole registry: with a partitioned index each worker
needs the global counts (a small table of name frequencies, broadcast), or scores drift with
the partition's own counts.

`streams.linkage.partition` builds a third way, memory per worker = registry / workers: the
index split by personal-id partition (where the changelog already puts each entry), every
record scattered to every partition, partials (best candidate, sum of odds, count) merged by
record id, the counts broadcast; verdicts identical to one whole index. docs/capacity.md has
its figures and the plan to wire it into the stream workers, which still hold a full replica.
"""

from streams.linkage.config import Comparison, Field, Level, Settings, load_settings
from streams.linkage.errors import LinkageError, ModelError, SettingsError
from streams.linkage.index import RegistryIndex
from streams.linkage.model import MODEL_FORMAT_VERSION, Model
from streams.linkage.score import Link, score_batch, score_pairs
from streams.linkage.train import train

__all__ = [
    "MODEL_FORMAT_VERSION",
    "Comparison",
    "Field",
    "Level",
    "Link",
    "LinkageError",
    "Model",
    "ModelError",
    "RegistryIndex",
    "Settings",
    "SettingsError",
    "load_settings",
    "score_batch",
    "score_pairs",
    "train",
]
