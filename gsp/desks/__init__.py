"""The stewards' desks: quarantine, match review and quality scorecards, each kept in the
control-plane database from its topic by an indexer (`base`)."""
