"""The sandbox core: store, protocol, events, webhooks and clock shared by every resource."""
