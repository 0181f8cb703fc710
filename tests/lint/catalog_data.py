#!/usr/bin/python3
"""Checks data/connectors.json and data/entities.json against AppFlow's AWS model.

usage: tests/lint/catalog_data.py [--model FILE] [--connectors FILE] [--entities FILE]
(defaults: model/appflow-2020-08-23.json, data/connectors.json, data/entities.json)

The server transcodes both files with the model's shapes, so what they say must be what AWS can
say. Every problem is printed as FILE: JSON-PATH: what is wrong, and the exit status is 1 when
there is one. Standard library only (it runs under Debian's /usr/bin/python3).

connectors.json: { ConnectorType: ConnectorConfiguration + "applicationType" }
  - one entry for every ConnectorType value except CustomConnector, and no other key;
  - each entry is a ConnectorConfiguration (members, types, enums, required members, lengths,
    patterns, recursively); "applicationType" (an ApplicationType string) is allowed only at
    the top of an entry; connectorType, when given, is the entry's key;
  - canUseAsSource is true exactly when SourceConnectorProperties has a member for the type,
    canUseAsDestination exactly when DestinationConnectorProperties has one (member names
    are matched case-insensitively: GoogleAnalytics is Googleanalytics);
  - every supportedDestinationConnectors entry can be a destination;
  - connectorMetadata names no other connector than the entry's.
entities.json: { ConnectorType: { Group: [ Entity ] } }
  Entity = { "name": Name, "label": Label, "fields": [ ConnectorEntityField ],
             "entities": { Group: [ Entity ] } }   (only name is required)
  - entity names are unique within a connector type at every depth, and field identifiers
    within an entity.
"""
import argparse
import json
import math
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_MODEL = os.path.join(ROOT, "model", "appflow-2020-08-23.json")
DEFAULT_CONNECTORS = os.path.join(ROOT, "data", "connectors.json")
DEFAULT_ENTITIES = os.path.join(ROOT, "data", "entities.json")

ENTITY_KEYS = ("name", "label", "fields", "entities")
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise DuplicateKey("duplicate key %s" % json.dumps(key))
        obj[key] = value
    return obj


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f, object_pairs_hook=_no_duplicates)


def child(path, key):
    """JSON path of a member (str key) or list item (int index)."""
    if isinstance(key, int):
        return "%s[%d]" % (path, key)
    if IDENT.fullmatch(key):
        return "%s.%s" % (path, key)
    return "%s[%s]" % (path, json.dumps(key))


def a(word):
    """word with its indefinite article."""
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def akind(value):
    return a(kind(value))


def kind(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


class Checker:
    def __init__(self, model):
        self.shapes = model["shapes"]
        self.errors = []
        self._patterns = {}
        self.connector_types = self.shapes["ConnectorType"]["enum"]
        self.sources = {m.lower() for m in self.shapes["SourceConnectorProperties"]["members"]}
        self.destinations = {
            m.lower() for m in self.shapes["DestinationConnectorProperties"]["members"]}

    def error(self, where, path, message):
        self.errors.append("%s: %s: %s" % (where, path, message))

    def pattern(self, regex):
        """The model's (Java) pattern compiled by Python's re, or None where re cannot read it."""
        if regex not in self._patterns:
            try:
                self._patterns[regex] = re.compile(regex)
            except re.error:
                self._patterns[regex] = None
        return self._patterns[regex]

    def check_length(self, where, path, shape_name, shape, count, what):
        lo, hi = shape.get("min"), shape.get("max")
        if lo is not None and count < lo:
            self.error(where, path, "%s %s has %d %s, fewer than the minimum %d"
                       % (shape_name, shape["type"], count, what, lo))
        if hi is not None and count > hi:
            self.error(where, path, "%s %s has %d %s, more than the maximum %d"
                       % (shape_name, shape["type"], count, what, hi))

    def check_string(self, where, path, shape_name, value):
        shape = self.shapes[shape_name]
        if "enum" in shape:
            if value not in shape["enum"]:
                self.error(where, path, "%s is not %s value (one of: %s)"
                           % (json.dumps(value), a(shape_name), ", ".join(shape["enum"])))
            return
        self.check_length(where, path, shape_name, shape, len(value), "characters")
        if "pattern" in shape:
            compiled = self.pattern(shape["pattern"])
            # Java's String.matches: the whole string must match.
            if compiled is not None and not compiled.fullmatch(value):
                self.error(where, path, "%s does not match %s's pattern %s"
                           % (json.dumps(value), shape_name, shape["pattern"]))

    def check(self, where, path, shape_name, value, extra=()):
        """Checks value against the model shape; extra names members allowed beside the shape's."""
        shape = self.shapes[shape_name]
        t = shape["type"]
        k = kind(value)
        if t == "structure":
            if k != "object":
                self.error(where, path, "%s must be a structure (JSON object), not %s"
                           % (shape_name, a(k)))
                return
            members = shape.get("members", {})
            for name, member_value in value.items():
                if name in extra:
                    continue
                if name not in members:
                    self.error(where, child(path, name), "%s has no member %s (members: %s)"
                               % (shape_name, json.dumps(name), ", ".join(members) or "none"))
                    continue
                self.check(where, child(path, name), members[name]["shape"], member_value)
            for name in shape.get("required", []):
                if name not in value:
                    self.error(where, path, "%s is missing its required member %s"
                               % (shape_name, name))
        elif t == "list":
            if k != "list":
                self.error(where, path, "%s must be a list, not %s" % (shape_name, a(k)))
                return
            self.check_length(where, path, shape_name, shape, len(value), "items")
            for i, item in enumerate(value):
                self.check(where, child(path, i), shape["member"]["shape"], item)
        elif t == "map":
            if k != "object":
                self.error(where, path, "%s must be a map (JSON object), not %s"
                           % (shape_name, a(k)))
                return
            self.check_length(where, path, shape_name, shape, len(value), "entries")
            for key, item in value.items():
                self.check(where, child(path, key), shape["key"]["shape"], key)
                self.check(where, child(path, key), shape["value"]["shape"], item)
        elif t == "string":
            if k != "string":
                self.error(where, path, "%s must be a string, not %s" % (shape_name, a(k)))
                return
            self.check_string(where, path, shape_name, value)
        elif t == "boolean":
            if k != "boolean":
                self.error(where, path, "%s must be a boolean, not %s" % (shape_name, a(k)))
        elif t in ("integer", "long"):
            if k != "integer":
                self.error(where, path, "%s must be %s, not %s" % (shape_name, a(t), a(k)))
                return
            bits = 31 if t == "integer" else 63
            if not -(2 ** bits) <= value < 2 ** bits:
                self.error(where, path, "%d does not fit %s (%s)" % (value, shape_name, t))
            self.check_range(where, path, shape_name, shape, value)
        elif t in ("double", "float"):
            if k not in ("integer", "number") or (k == "number" and not math.isfinite(value)):
                self.error(where, path, "%s must be a finite number, not %s"
                           % (shape_name, a(k)))
                return
            self.check_range(where, path, shape_name, shape, value)
        elif t == "timestamp":
            if k not in ("integer", "number", "string"):
                self.error(where, path, "%s must be a timestamp (epoch seconds or ISO 8601), "
                           "not %s" % (shape_name, a(k)))
        elif t == "blob":
            if k != "string":
                self.error(where, path, "%s must be a base64 string, not %s" % (shape_name, a(k)))
        else:
            self.error(where, path, "%s has a type this lint does not know: %s" % (shape_name, t))

    def check_range(self, where, path, shape_name, shape, value):
        if "min" in shape and value < shape["min"]:
            self.error(where, path, "%s is below %s's minimum %s"
                       % (value, shape_name, shape["min"]))
        if "max" in shape and value > shape["max"]:
            self.error(where, path, "%s is above %s's maximum %s"
                       % (value, shape_name, shape["max"]))

    # ------------------------------------------------------------------ connectors.json

    def check_connectors(self, where, doc):
        if kind(doc) != "object":
            self.error(where, "$", "must be an object keyed by ConnectorType, not %s" % akind(doc))
            return
        expected = [t for t in self.connector_types if t != "CustomConnector"]
        for key, entry in doc.items():
            path = child("$", key)
            if key not in self.connector_types:
                self.error(where, path, "%s is not a ConnectorType value" % json.dumps(key))
                continue
            if key == "CustomConnector":
                self.error(where, path, "CustomConnector has no entry here: custom connectors are "
                           "registered at run time")
                continue
            self.check_connector(where, path, key, entry)
        for t in expected:
            if t not in doc:
                self.error(where, "$", "no entry for ConnectorType %s" % t)

    def check_connector(self, where, path, ctype, entry):
        if kind(entry) != "object":
            self.error(where, path, "must be a ConnectorConfiguration object, not %s"
                       % akind(entry))
            return
        if "applicationType" not in entry:
            self.error(where, path, "is missing applicationType (what ListConnectors shows)")
        else:
            app = entry["applicationType"]
            if kind(app) != "string":
                self.error(where, child(path, "applicationType"),
                           "ApplicationType must be a string, not %s" % akind(app))
            else:
                self.check_string(where, child(path, "applicationType"), "ApplicationType", app)
        self.check(where, path, "ConnectorConfiguration", entry, extra=("applicationType",))

        if "connectorType" in entry and entry["connectorType"] != ctype:
            self.error(where, child(path, "connectorType"), "%s is not the entry's key %s"
                       % (json.dumps(entry["connectorType"]), ctype))
        for member, capable, table in (
                ("canUseAsSource", ctype.lower() in self.sources, "SourceConnectorProperties"),
                ("canUseAsDestination", ctype.lower() in self.destinations,
                 "DestinationConnectorProperties")):
            if member not in entry:
                self.error(where, path, "is missing %s (must be %s: %s has %s member for %s)"
                           % (member, json.dumps(capable), table, "a" if capable else "no", ctype))
            elif kind(entry[member]) == "boolean" and entry[member] != capable:
                self.error(where, child(path, member), "is %s, but %s has %s member for %s"
                           % (json.dumps(entry[member]), table, "a" if capable else "no", ctype))
        dests = entry.get("supportedDestinationConnectors")
        if kind(dests) == "list":
            for i, d in enumerate(dests):
                if isinstance(d, str) and d in self.connector_types \
                        and d.lower() not in self.destinations:
                    self.error(where, child(child(path, "supportedDestinationConnectors"), i),
                               "%s cannot be a destination (DestinationConnectorProperties has "
                               "no member for it)" % d)
        meta = entry.get("connectorMetadata")
        if kind(meta) == "object":
            for name in meta:
                if name.lower() != ctype.lower():
                    self.error(where, child(child(path, "connectorMetadata"), name),
                               "metadata for %s in the entry for %s" % (name, ctype))

    # ------------------------------------------------------------------ entities.json

    def check_entities(self, where, doc):
        if kind(doc) != "object":
            self.error(where, "$", "must be an object keyed by ConnectorType, not %s" % akind(doc))
            return
        for key, groups in doc.items():
            path = child("$", key)
            if key not in self.connector_types:
                self.error(where, path, "%s is not a ConnectorType value" % json.dumps(key))
                continue
            seen = {}
            self.check_groups(where, path, groups, seen)

    def check_groups(self, where, path, groups, seen):
        if kind(groups) != "object":
            self.error(where, path, "must be an object of group -> [Entity], not %s"
                       % akind(groups))
            return
        for group, entities in groups.items():
            gpath = child(path, group)
            self.check(where, gpath, "Group", group)
            if kind(entities) != "list":
                self.error(where, gpath, "must be a list of entities, not %s" % akind(entities))
                continue
            for i, entity in enumerate(entities):
                self.check_entity(where, child(gpath, i), entity, seen)

    def check_entity(self, where, path, entity, seen):
        if kind(entity) != "object":
            self.error(where, path, "an entity must be an object, not %s" % akind(entity))
            return
        for key in entity:
            if key not in ENTITY_KEYS:
                self.error(where, child(path, key), "an entity has no key %s (keys: %s)"
                           % (json.dumps(key), ", ".join(ENTITY_KEYS)))
        entity_shape = self.shapes["ConnectorEntity"]["members"]
        if "name" not in entity:
            self.error(where, path, "an entity is missing its required name")
        else:
            name = entity["name"]
            self.check(where, child(path, "name"), entity_shape["name"]["shape"], name)
            if isinstance(name, str):
                if name in seen:
                    self.error(where, child(path, "name"), "entity name %s repeats (first at %s)"
                               % (json.dumps(name), seen[name]))
                else:
                    seen[name] = child(path, "name")
        if "label" in entity:
            self.check(where, child(path, "label"), entity_shape["label"]["shape"], entity["label"])
        if "fields" in entity:
            fields = entity["fields"]
            fpath = child(path, "fields")
            if kind(fields) != "list":
                self.error(where, fpath, "fields must be a list of ConnectorEntityField, not %s"
                           % akind(fields))
            else:
                identifiers = {}
                for i, field in enumerate(fields):
                    ipath = child(fpath, i)
                    self.check(where, ipath, "ConnectorEntityField", field)
                    ident = field.get("identifier") if isinstance(field, dict) else None
                    if isinstance(ident, str):
                        if ident in identifiers:
                            self.error(where, child(ipath, "identifier"),
                                       "field identifier %s repeats (first at %s)"
                                       % (json.dumps(ident), identifiers[ident]))
                        else:
                            identifiers[ident] = child(ipath, "identifier")
        if "entities" in entity:
            self.check_groups(where, child(path, "entities"), entity["entities"], seen)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--connectors", default=DEFAULT_CONNECTORS)
    parser.add_argument("--entities", default=DEFAULT_ENTITIES)
    args = parser.parse_args(argv)

    def shown(path):
        rel = os.path.relpath(os.path.abspath(path), ROOT)
        return path if rel.startswith("..") else rel

    try:
        checker = Checker(load_json(args.model))
    except (OSError, ValueError) as e:
        print("%s: cannot load the model: %s" % (shown(args.model), e), file=sys.stderr)
        return 1
    for path, check in ((args.connectors, checker.check_connectors),
                        (args.entities, checker.check_entities)):
        try:
            doc = load_json(path)
        except (OSError, ValueError) as e:
            checker.error(shown(path), "$", "cannot load: %s" % e)
            continue
        check(shown(path), doc)
    if checker.errors:
        for line in checker.errors:
            print(line, file=sys.stderr)
        print("catalog data: %d problem(s)" % len(checker.errors), file=sys.stderr)
        return 1
    print("catalog data: %s and %s agree with the model"
          % (shown(args.connectors), shown(args.entities)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
