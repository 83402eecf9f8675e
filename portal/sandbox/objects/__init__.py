"""The domain of single Stripe objects: each object's constructor and its one transition function.

Modules here import only ``core``; the billing engine (``billing``) builds on them, and the
HTTP adapters (``resources``) call them. A status changes only inside the object's
``transition`` function, which checks the move and records the event Stripe sends for it.
"""
