#!/bin/sh
# Creates the platform's topics with explicit partition counts, before the control
# plane or any stream worker starts.
#
# Why not let them be auto-created: a topic's partition count is fixed when it is
# created (docs/architecture.md). The Faust registry table and the clean topics are
# co-partitioned by personal id, so every data topic must have exactly
# GSP_PARTITIONS partitions; adding partitions later moves keys and separates a
# subscriber from the worker holding their citizen's table partition. Broker
# auto-creation is therefore off, and an existing topic with another count fails
# this script instead of being used.
#
# Not created here: share.<agency>.<dataset>.v1 (the control plane creates one per
# subscription, with GSP_PARTITIONS partitions), verify.<agency>.requests.v1 and
# verify.<agency>.replies.v1 (likewise, per verify subscription) and Faust's own internal topics
# (<GSP_APP_ID>-registry-changelog and the assignor topic, created by the workers
# with GSP_PARTITIONS partitions).
#
# tests/test_deploy.py checks this list against gsp.catalog.platform_topics() and
# that deploy/k8s/topics-job.yaml embeds this exact script.
#
# Env: BOOTSTRAP (host:port), PARTITIONS (= GSP_PARTITIONS),
#      REPLICATION_FACTOR (1 on one broker; 3 in production).
set -eu
: "${BOOTSTRAP:?set BOOTSTRAP}" "${PARTITIONS:?set PARTITIONS to GSP_PARTITIONS}"
REPLICATION_FACTOR="${REPLICATION_FACTOR:-1}"
TOPICS=/opt/kafka/bin/kafka-topics.sh

create() {  # create TOPIC PARTITIONS [--config key=value ...]
  topic=$1 partitions=$2
  shift 2
  "$TOPICS" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists --topic "$topic" \
    --partitions "$partitions" --replication-factor "$REPLICATION_FACTOR" "$@"
  actual=$("$TOPICS" --bootstrap-server "$BOOTSTRAP" --describe --topic "$topic" \
    | sed -n 's/.*PartitionCount: *\([0-9][0-9]*\).*/\1/p' | head -n 1)
  if [ "$actual" != "$partitions" ]; then
    echo "create-topics: $topic has ${actual:-no} partitions, expected $partitions; recreate it (partitions cannot be changed without moving keys)" >&2
    exit 1
  fi
}

# Platform topics: one partition each, so their order is total.
create gsp.subscriptions 1 --config cleanup.policy=compact
create gsp.connect.offsets 1 --config cleanup.policy=compact
create gsp.connect.configs 1 --config cleanup.policy=compact
create gsp.connect.status 1 --config cleanup.policy=compact
create gsp.connect.slots 64
create gsp.review.decisions 1 --config cleanup.policy=compact
create gsp.audit 1
create gsp.quality 1
create gsp.consent 1 --config cleanup.policy=compact

# The audit ledger: what the workers delivered and answered; partition p is the ledger's chain data-<p>.
create gsp.ledger "$PARTITIONS"
create gsp.ledger.heads 1

# Verification without data: the control plane's HTTP batches, spread over the workers, and their replies.
create gsp.verify.requests "$PARTITIONS"
create gsp.verify.replies "$PARTITIONS"

# Data topics: GSP_PARTITIONS each, all the same (co-partitioned by personal id).
create raw.electricity.customer.v1 "$PARTITIONS"
create clean.electricity.customer.v1 "$PARTITIONS"
create quarantine.electricity.customer.v1 "$PARTITIONS"
create match.electricity.customer.v1 "$PARTITIONS"
create review.electricity.customer.v1 "$PARTITIONS"
create raw.insurance.participant.v1 "$PARTITIONS"
create clean.insurance.participant.v1 "$PARTITIONS"
create quarantine.insurance.participant.v1 "$PARTITIONS"
create match.insurance.participant.v1 "$PARTITIONS"
create review.insurance.participant.v1 "$PARTITIONS"
create raw.population.citizen.v1 "$PARTITIONS"
create clean.population.citizen.v1 "$PARTITIONS"
create quarantine.population.citizen.v1 "$PARTITIONS"
create raw.population.event.v1 "$PARTITIONS"
create clean.population.event.v1 "$PARTITIONS"
create quarantine.population.event.v1 "$PARTITIONS"
create raw.telecom.subscriber.v1 "$PARTITIONS"
create clean.telecom.subscriber.v1 "$PARTITIONS"
create quarantine.telecom.subscriber.v1 "$PARTITIONS"
create match.telecom.subscriber.v1 "$PARTITIONS"
create review.telecom.subscriber.v1 "$PARTITIONS"

echo "create-topics: all topics present with $PARTITIONS data partitions"
