"""The HTTP API's admin routes: collections and people, for admins (`rag collections` and `rag users` over
HTTP). Creating a collection or managing people takes the admin role on every collection (`*`);
removing a collection, the admin role on it. A collection made here gets a corpus folder of its own
under RAG_HOME (no path on the server is named over HTTP); tokens are shown once, as on the command line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from rag.assistant import Assistant
from rag.collections import Collections
from ui.access import Access, Person, Refused
from ui.api import Who
from ui.people import EVERY, People


class NewCollection(BaseModel):
    name: str = Field(description="1-40 letters, digits, '-' or '_'.")


class NewUser(BaseModel):
    name: str
    password: str = Field(description="At least 8 characters.")


class Grant(BaseModel):
    collection: str = Field(description="A collection's name, or `*` for every collection.")
    role: str = Field(description="reader, editor or admin.")


class NewToken(BaseModel):
    label: str = ""


def admin_router(assistant: Assistant, access: Access, guard: Callable[..., Person]) -> APIRouter:
    """`/v1/collections` (create, remove) and `/v1/users...`, each for admins only."""
    api = APIRouter(prefix="/v1", dependencies=[Depends(guard)])
    registry = Collections(assistant.base_settings)
    people = People(assistant.base_settings.users)

    def admin(person: Person, key: str = EVERY) -> None:
        if not person.may(key, "admin"):
            raise Refused(403, "admins only: your role does not allow it; ask an admin")

    def key(collection: str) -> str:
        return EVERY if collection == EVERY else registry.get(collection).key

    @api.post("/collections", summary="Create a collection (admins of every collection)")
    def create_collection(body: NewCollection, person: Who) -> Any:
        admin(person)
        made = registry.create(body.name)
        return {"name": made.name}

    @api.delete("/collections/{name}", summary="Remove a collection and its index (its admins)")
    def remove_collection(name: str, person: Who) -> Any:
        chosen = access.collection(person, assistant, name, "admin")
        gone = registry.remove(chosen.collection_name)
        return {"name": gone.name, "removed": True}

    @api.get("/users", summary="The users and their roles (admins of every collection)")
    def users(person: Who) -> Any:
        admin(person)
        names = {c.key: c.name for c in registry.list()} | {EVERY: EVERY}
        return {"users": [{"name": u.name, "roles": {names.get(k, f"(removed {k})"): r for k, r in u.roles.items()}}
                          for u in people.users()]}

    @api.post("/users", summary="Add a user (admins of every collection)")
    def add_user(body: NewUser, person: Who) -> Any:
        admin(person)
        people.add(body.name, body.password)
        return {"name": body.name}

    @api.delete("/users/{name}", summary="Remove a user, their roles and tokens (admins of every collection)")
    def remove_user(name: str, person: Who) -> Any:
        admin(person)
        people.remove(name)
        return {"name": name, "removed": True}

    @api.post("/users/{name}/roles", summary="Give a user a role on a collection (admins of every collection)")
    def grant(name: str, body: Grant, person: Who) -> Any:
        admin(person)
        people.grant(name, key(body.collection), body.role)
        return {"name": name, "collection": body.collection, "role": body.role}

    @api.delete("/users/{name}/roles/{collection}", summary="Take a user's role on a collection away")
    def revoke(name: str, collection: str, person: Who) -> Any:
        admin(person)
        return {"name": name, "collection": collection, "revoked": people.revoke(name, key(collection))}

    @api.post("/users/{name}/tokens", summary="A new personal token for a user: shown this once")
    def token(name: str, body: NewToken, person: Who) -> Any:
        admin(person)
        made, secret = people.new_token(name, body.label)
        return {"id": made.id, "user": made.user, "token": secret}

    @api.delete("/tokens/{ident}", summary="Revoke a personal token (it stops working at once)")
    def revoke_token(ident: str, person: Who) -> Any:
        admin(person)
        people.revoke_token(ident)
        return {"id": ident, "revoked": True}

    return api
