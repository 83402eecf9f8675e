"""Domain logic: models in, Stripe through stripe_client; never request, session or flash."""
