"""Billing of the sandbox: period, pricing, proration, totals and dunning rules, and the engine."""
