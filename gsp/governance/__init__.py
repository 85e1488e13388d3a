"""Governance: the dataset catalog derived from the declarations, subscriptions, topics and the
schema registry's store. Agencies, approvals and the audit ledger go here."""
