"""Outgoing webhooks: subscriptions to record and addon events, signed deliveries through the outbox."""
