"""Database models, one module per aggregate."""
from portal.models.account import Account, Role, User
from portal.models.audit import AuditEntry
from portal.models.catalog import Price, Product

__all__ = ["Account", "AuditEntry", "Price", "Product", "Role", "User"]
