#!/usr/bin/python3
"""Writes appflowd's contract from AppFlow's AWS model (model/appflow-2020-08-23.json).

usage: scripts/gen_model.py PROTO_OUT GEN_OUT
  PROTO_OUT/appflow/v1/appflow.proto  every operation an RPC, every structure a message
  GEN_OUT/model/appflow_model.{c,h}   the tables the service and the AWS door work from
  GEN_OUT/nanopb/appflow.options      the C client's bounds

Field numbers are read from the proto already in proto/ (the committed contract): a member
keeps its number for as long as its proto type stays the same; a new member, or one whose type
changed, takes the next free number, and the old number and name are reserved. So a
regenerated proto never renumbers a field.

Mapping (documented for clients in README.md):
- structure -> message of the same name; member -> proto2 `optional` field (presence kept),
  snake_case name, json_name = the AWS member name;
- string with enum -> enum of the shape's name; each value is PREFIX_UPPER_SNAKE with the AWS
  string in the (appflow.v1.aws_value) option; value 0 is PREFIX_UNSPECIFIED (never sent);
- a map key is always a string (an enum key shape is checked by the service, not the type);
- a list as a map value becomes a message of the list shape's name with one field `items`;
- integer -> int32, long -> int64, double, boolean -> bool, timestamp -> Timestamp.
"""
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "model", "appflow-2020-08-23.json")
COMMITTED = os.path.join(ROOT, "proto", "appflow", "v1", "appflow.proto")

C_KEYWORDS = {"auto", "break", "case", "char", "const", "continue", "default", "do", "double",
              "else", "enum", "extern", "float", "for", "goto", "if", "int", "long", "register",
              "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef",
              "union", "unsigned", "void", "volatile", "while", "bool", "base"}

SCALARS = {"integer": "int32", "long": "int64", "double": "double", "boolean": "bool",
           "timestamp": "google.protobuf.Timestamp"}


def snake(name):
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    return s.lower()


def upper_snake(name):
    return re.sub(r"[^A-Za-z0-9]+", "_", snake(name)).upper().strip("_")


class Model:
    def __init__(self, path):
        with open(path) as f:
            self.m = json.load(f)
        self.shapes = self.m["shapes"]
        self.ops = self.m["operations"]
        self.patterns = []  # java pattern texts, in order of first use

    def shape(self, name):
        return self.shapes[name]

    def is_enum(self, name):
        s = self.shapes[name]
        return s["type"] == "string" and "enum" in s

    def pattern_index(self, p):
        if p not in self.patterns:
            self.patterns.append(p)
        return self.patterns.index(p)

    def structures(self):
        return [n for n, s in self.shapes.items()
                if s["type"] == "structure" and not s.get("exception")]

    def enums(self):
        return [n for n in self.shapes if self.is_enum(n)]

    def list_wrappers(self):
        """List shapes used as map values: they need a message of their own."""
        out = []
        for s in self.shapes.values():
            if s["type"] == "map":
                v = s["value"]["shape"]
                if self.shapes[v]["type"] == "list" and v not in out:
                    out.append(v)
        return out


# ---- field numbers from the committed proto ----

def committed_numbers(path):
    """{message: {"fields": {name: (type, number)}, "reserved": set(numbers), "rnames": set}}"""
    out = {}
    if not os.path.exists(path):
        return out
    cur = None
    depth = 0
    with open(path) as f:
        for line in f:
            line = line.split("//")[0].strip()
            if not line:
                continue
            m = re.match(r"message (\w+) \{", line)
            if m and depth == 0:
                cur = out.setdefault(m.group(1), {"fields": {}, "reserved": set(), "rnames": set()})
            opens, closes = line.count("{"), line.count("}")
            if cur is not None and depth == 1:
                m = re.match(r"(?:optional |required )?(repeated )?(map<[^>]+>|[\w.]+) (\w+) = (\d+)",
                             line)
                if m:
                    typ = (m.group(1) or "") + m.group(2)
                    cur["fields"][m.group(3)] = (typ, int(m.group(4)))
                m = re.match(r"reserved (.*);", line)
                if m:
                    for part in m.group(1).split(","):
                        part = part.strip()
                        if part.startswith('"'):
                            cur["rnames"].add(part.strip('"'))
                        elif " to " in part:
                            a, b = part.split(" to ")
                            cur["reserved"].update(range(int(a), int(b) + 1))
                        elif part:
                            cur["reserved"].add(int(part))
            depth += opens - closes
            if depth == 0:
                cur = None
    return out


def committed_enums(path):
    """{enum: {VALUE_NAME: number}} from the committed proto."""
    out, cur = {}, None
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            line = line.split("//")[0].strip()
            m = re.match(r"enum (\w+) \{", line)
            if m:
                cur = out.setdefault(m.group(1), {})
                continue
            if cur is not None:
                m = re.match(r"(\w+) = (\d+)", line)
                if m:
                    cur[m.group(1)] = int(m.group(2))
                if "}" in line:
                    cur = None
    return out


def enum_numbers(ename, values, old):
    """[(aws string, value name, number)]: a value keeps its committed number; new values
    take the next free one, so AWS adding a value never renumbers the others."""
    prefix = upper_snake(ename) + "_"
    prev = old.get(ename, {})
    used = set(prev.values()) | {0}
    out, seen = [], set()
    for v in values:
        vn = prefix + upper_snake(v)
        if vn in seen:
            raise SystemExit("gen_model: enum %s has two values named %s" % (ename, vn))
        seen.add(vn)
        out.append([v, vn, prev.get(vn)])
    nxt = max(used) + 1
    for row in out:
        if row[2] is None:
            row[2] = nxt
            used.add(nxt)
            nxt += 1
    return [tuple(r) for r in out]


def squash(name):
    return name.replace("_", "").lower()


def assign_numbers(msg, fields, old):
    """fields: [(name, type)] in model order -> ([(name, type, number)], reserved, rnames)."""
    prev = old.get(msg, {"fields": {}, "reserved": set(), "rnames": set()})
    pf = prev["fields"]
    byname = {squash(k): k for k in pf}
    used = set(prev["reserved"]) | {n for _, n in pf.values()}
    reserved = set(prev["reserved"])
    rnames = set(prev["rnames"])
    out, kept = [], set()
    for name, typ in fields:
        o = byname.get(squash(name))
        if o is not None and pf[o][0] == typ:
            out.append((name, typ, pf[o][1]))
            kept.add(o)
        else:
            out.append((name, typ, None))
    nxt = max(used) + 1 if used else 1
    final = []
    for name, typ, num in out:
        if num is None:
            while nxt in used or 19000 <= nxt <= 19999:
                nxt += 1
            num = nxt
            used.add(num)
        final.append((name, typ, num))
    for o, (_, num) in pf.items():
        if o not in kept:
            reserved.add(num)
            rnames.add(o)
    rnames -= {n for n, _, _ in final}
    return final, reserved, rnames


# ---- the proto ----

def constraint_text(model, shape_name):
    s = model.shape(shape_name)
    parts = []
    t = s["type"]
    if "enum" in s:
        parts.append("one of " + ", ".join(s["enum"]))
    if "min" in s or "max" in s:
        what = {"string": "length", "list": "entries", "map": "entries"}.get(t, "value")
        lo, hi = s.get("min"), s.get("max")
        if lo is not None and hi is not None:
            parts.append("%s %s..%s" % (what, lo, hi))
        elif lo is not None:
            parts.append("%s >= %s" % (what, lo))
        else:
            parts.append("%s <= %s" % (what, hi))
    if "pattern" in s:
        parts.append("pattern " + s["pattern"])
    if s.get("sensitive"):
        parts.append("sensitive")
    if t == "list":
        inner = constraint_text(model, s["member"]["shape"])
        if inner:
            parts.append("each %s: %s" % (s["member"]["shape"], inner))
    if t == "map":
        k = constraint_text(model, s["key"]["shape"])
        v = constraint_text(model, s["value"]["shape"])
        if k:
            parts.append("keys %s" % k)
        if v:
            parts.append("values %s" % v)
    return "; ".join(parts)


def proto_type(model, shape_name, in_map=False):
    s = model.shape(shape_name)
    t = s["type"]
    if t == "string":
        if "enum" in s and not in_map:
            return shape_name
        return "string"
    if t in SCALARS:
        return SCALARS[t]
    if t == "structure":
        return shape_name
    if t == "list":
        if in_map:
            return shape_name  # the wrapper message
        return proto_type(model, s["member"]["shape"])
    if t == "map":
        return "map<string, %s>" % proto_type(model, s["value"]["shape"], in_map=True)
    raise SystemExit("gen_model: shape %s has type %s, which the generator does not map"
                     % (shape_name, t))


def field_label(model, shape_name):
    t = model.shape(shape_name)["type"]
    if t == "list":
        return "repeated "
    if t == "map":
        return ""
    return "optional "


def wrap(text, indent, width=100):
    words, lines, cur = text.split(" "), [], indent + "//"
    for w in words:
        if len(cur) + 1 + len(w) > width and cur != indent + "//":
            lines.append(cur)
            cur = indent + "//"
        cur += " " + w
    lines.append(cur)
    return lines


def message_fields(model, sname):
    """[(field, type, member, shape, label)] in model order."""
    s = model.shape(sname)
    out = []
    for mname, mm in s["members"].items():
        f = snake(mname)
        if f in C_KEYWORDS:
            f += "_value"
        out.append((f, proto_type(model, mm["shape"]), mname, mm["shape"],
                    field_label(model, mm["shape"])))
    names = [o[0] for o in out]
    if len(set(names)) != len(names):
        raise SystemExit("gen_model: %s has two members with one snake_case name" % sname)
    return out


def gen_proto(model, old):
    L = []
    L += ["// Amazon AppFlow's API (2020-08-23) as a gRPC service. GENERATED by scripts/gen_model.py",
          "// from model/appflow-2020-08-23.json: do not edit; run `make gen`.",
          "//",
          "// Every operation is an RPC with its AWS route (google.api.http), every AWS structure a",
          "// message, every member an optional field whose json_name is the AWS member name; an",
          "// enum value's AWS string is its (appflow.v1.aws_value) option. Field numbers never",
          "// change: a member whose type changes gets a new number and its old one is reserved.",
          'syntax = "proto2";', "", "package appflow.v1;", "",
          'import "appflow/v1/options.proto";',
          'import "google/api/annotations.proto";',
          'import "google/protobuf/timestamp.proto";', ""]
    L += ["// AppFlowService serves AppFlow's operations; errors carry their AWS type (see",
          "// docs/ARCHITECTURE.md).",
          "service AppFlowService {"]
    for name, op in model.ops.items():
        http = op["http"]
        errs = ", ".join(e["shape"] for e in op.get("errors", []))
        L += wrap("%s: %s %s. Errors: %s." % (name, http["method"], http["requestUri"], errs), "  ")
        inp = op["input"]["shape"]
        uri = http["requestUri"]
        for mname, mm in model.shape(inp)["members"].items():
            if mm.get("location") == "uri":
                uri = uri.replace("{%s}" % mm.get("locationName", mname), "{%s}" % snake(mname))
        L.append("  rpc %s(%s) returns (%s) {" % (name, inp, op["output"]["shape"]))
        L.append("    option (google.api.http) = {")
        L.append('      %s: "%s"' % (http["method"].lower(), uri))
        if http["method"] in ("POST", "PUT", "PATCH"):
            L.append('      body: "*"')
        L.append("    };")
        L.append("  }")
    L += ["}", ""]
    for ename in model.enums():
        s = model.shape(ename)
        prefix = upper_snake(ename) + "_"
        L += wrap("AWS enum %s: %s." % (ename, ", ".join(s["enum"])), "")
        L.append("enum %s {" % ename)
        L.append("  %sUNSPECIFIED = 0;" % prefix)
        for v, vn, num in enum_numbers(ename, s["enum"], model.old_enums):
            L.append('  %s = %d [(aws_value) = "%s"];' % (vn, num, v))
        L += ["}", ""]
    for wname in model.list_wrappers():
        s = model.shape(wname)
        inner = proto_type(model, s["member"]["shape"])
        L += wrap("AWS list %s of %s, as a map value: on the AWS wire a JSON array of its items."
                  % (wname, s["member"]["shape"]), "")
        L.append("message %s {" % wname)
        L.append('  repeated %s items = 1 [json_name = "items"];' % inner)
        L += ["}", ""]
    for sname in model.structures():
        s = model.shape(sname)
        req = set(s.get("required", []))
        fields = message_fields(model, sname)
        typed = [(f, ("repeated " if lab == "repeated " else "") + t) for f, t, _, _, lab in fields]
        nums, reserved, rnames = assign_numbers(sname, typed, old)
        L.append("// AWS structure %s." % sname)
        L.append("message %s {" % sname)
        if reserved:
            L.append("  reserved %s;" % ", ".join(str(n) for n in sorted(reserved)))
        if rnames:
            L.append("  reserved %s;" % ", ".join('"%s"' % n for n in sorted(rnames)))
        for (f, t, mname, shp, lab), (_, _, num) in zip(fields, nums):
            facts = ["%s (%s)" % (mname, shp)]
            if mname in req:
                facts.append("required")
            mm = s["members"][mname]
            if mm.get("location"):
                facts.append("in the %s as %s" % (mm["location"], mm.get("locationName", mname)))
            if mm.get("idempotencyToken"):
                facts.append("idempotency token")
            c = constraint_text(model, shp)
            if c:
                facts.append(c)
            L += wrap(": ".join([facts[0], "; ".join(facts[1:])]) + "." if len(facts) > 1
                      else facts[0] + ".", "  ")
            L.append('  %s%s %s = %d [json_name = "%s"];' % (lab, t, f, num, mname))
        L += ["}", ""]
    return "\n".join(L).rstrip("\n") + "\n"


# ---- Java regex -> PCRE2 ----

def pcre2_of(java):
    """AWS patterns are java.util.regex; PCRE2 (UTF mode, ASCII \\w \\s \\d) reads them alike
    except for \\uXXXX escapes, which become \\x{...}; a surrogate pair range
    \\uD800\\uDC00-\\uDBFF\\uDFFF (every supplementary character in Java's UTF-16) becomes
    \\x{10000}-\\x{10FFFF}."""
    p = java.replace("\\uD800\\uDC00-\\uDBFF\\uDFFF", "\\x{10000}-\\x{10FFFF}")
    return re.sub(r"\\u([0-9A-Fa-f]{4})", lambda m: "\\x{%s}" % m.group(1), p)


def json_key(name):
    """A member's name as the AWS door writes it before the value: a JSON string and a colon
    (".json_key" and ".json_key_len" of af_model_member), so no response escapes or measures it."""
    key = json.dumps(name) + ":"
    return ".json_key = %s, .json_key_len = %d" % (c_str(key), len(key.encode("utf-8")))


def c_str(s):
    out = '"'
    for ch in s:
        if ch in '"\\':
            out += "\\" + ch
        elif ch == "?":
            out += "\\?"  # no trigraphs
        elif 32 <= ord(ch) < 127:
            out += ch
        else:
            out += "\\x%02x" % ord(ch)
    return out + '"'


# ---- the C tables ----

def c_id(name):
    return re.sub(r"\W", "_", name)


def pbc_desc(name):
    """protobuf-c's descriptor name: '_' before each capital that follows a non-capital."""
    low = "".join(("_" if c.isupper() and i > 0 and not name[i - 1].isupper() else "") + c.lower()
                  for i, c in enumerate(name))
    return "appflow__v1__%s__descriptor" % low


def gen_c(model, old):
    shapes_used = []

    def use(sn):
        if sn not in shapes_used:
            shapes_used.append(sn)
            s = model.shape(sn)
            if s["type"] == "list":
                use(s["member"]["shape"])
            if s["type"] == "map":
                use(s["key"]["shape"])
                use(s["value"]["shape"])
            if s["type"] == "structure":
                for mm in s["members"].values():
                    use(mm["shape"])

    structs = model.structures()
    for sn in structs:
        use(sn)
    wrappers = model.list_wrappers()
    outputs = {op["output"]["shape"] for op in model.ops.values()}
    H, C = [], []
    H += ["/* GENERATED by scripts/gen_model.py from model/appflow-2020-08-23.json: do not edit. */",
          "#ifndef AF_GEN_APPFLOW_MODEL_H", "#define AF_GEN_APPFLOW_MODEL_H", "",
          '#include "common/awsmodel.h"', ""]
    for sn in structs + wrappers:
        H.append("extern const af_model_struct af_model_%s;" % c_id(sn))
    H += ["", "/* Every operation, in the model's order. */",
          "extern const af_model_operation af_model_operations[];",
          "extern const size_t af_model_operation_count;",
          "/* Every structure (and list wrapper) with a message. */",
          "extern const af_model_struct *const af_model_structs[];",
          "extern const size_t af_model_struct_count;",
          "/* The model's patterns: as AWS writes them (Java) and as PCRE2 reads them. */",
          "extern const char *const af_model_pattern_java[];",
          "extern const char *const af_model_pattern_pcre2[];",
          "extern const size_t af_model_pattern_count;", "", "#endif"]
    C += ["/* GENERATED by scripts/gen_model.py from model/appflow-2020-08-23.json: do not edit. */",
          '#include "appflow_model.h"', "",
          '#include "appflow/v1/appflow.pb-c.h"', "", "#include <stddef.h>", ""]
    type_of = {"string": "AF_MODEL_STRING", "integer": "AF_MODEL_INTEGER", "long": "AF_MODEL_LONG",
               "double": "AF_MODEL_DOUBLE", "boolean": "AF_MODEL_BOOLEAN",
               "timestamp": "AF_MODEL_TIMESTAMP", "list": "AF_MODEL_LIST", "map": "AF_MODEL_MAP",
               "structure": "AF_MODEL_STRUCTURE"}
    for sn in shapes_used:
        C.append("static const af_model_shape shape_%s;" % c_id(sn))
    C.append("")
    for sn in shapes_used:
        s = model.shape(sn)
        if "enum" in s:
            rows = enum_numbers(sn, s["enum"], model.old_enums)
            by = {num: v for v, _, num in rows}
            C.append("static const char *const enum_%s[] = {NULL, %s};" % (
                c_id(sn), ", ".join(c_str(by[i]) if i in by else "NULL"
                                    for i in range(1, max(by) + 1))))
            # The same strings as the AWS door writes them, quoted JSON, and their lengths.
            quoted = {i: json.dumps(v) for i, v in by.items()}
            C.append("static const char *const enum_json_%s[] = {NULL, %s};" % (
                c_id(sn), ", ".join(c_str(quoted[i]) if i in by else "NULL"
                                    for i in range(1, max(by) + 1))))
            C.append("static const size_t enum_json_len_%s[] = {0, %s};" % (
                c_id(sn), ", ".join(str(len(quoted[i].encode("utf-8"))) if i in by else "0"
                                    for i in range(1, max(by) + 1))))
    C.append("")
    for sn in shapes_used:
        s = model.shape(sn)
        t = "AF_MODEL_ENUM" if "enum" in s else type_of[s["type"]]
        parts = [".name = %s" % c_str(sn), ".type = %s" % t]
        if "min" in s:
            parts.append(".has_min = 1, .min = %d" % s["min"])
        if "max" in s:
            parts.append(".has_max = 1, .max = %d" % s["max"])
        parts.append(".pattern = %d" % (model.pattern_index(s["pattern"]) if "pattern" in s else -1))
        if s.get("sensitive"):
            parts.append(".sensitive = 1")
        if s["type"] == "list":
            parts.append(".member = &shape_%s" % c_id(s["member"]["shape"]))
            if sn in wrappers:
                parts.append(".structure = &af_model_%s" % c_id(sn))
        if s["type"] == "map":
            parts.append(".key = &shape_%s" % c_id(s["key"]["shape"]))
            parts.append(".member = &shape_%s" % c_id(s["value"]["shape"]))
        if s["type"] == "structure":
            parts.append(".structure = &af_model_%s" % c_id(sn))
        if "enum" in s:
            top = max(num for _, _, num in enum_numbers(sn, s["enum"], model.old_enums))
            parts.append(".enum_values = enum_%s, .n_enum = %d" % (c_id(sn), top + 1))
            parts.append(".enum_json = enum_json_%s, .enum_json_len = enum_json_len_%s" % (
                c_id(sn), c_id(sn)))
        C.append("static const af_model_shape shape_%s = {%s};" % (c_id(sn), ", ".join(parts)))
    C.append("")
    loc = {None: "AF_MODEL_BODY", "uri": "AF_MODEL_URI", "querystring": "AF_MODEL_QUERY",
           "header": "AF_MODEL_HEADER"}
    for wn in wrappers:
        s = model.shape(wn)
        C.append("static const af_model_member members_%s[] = {" % c_id(wn))
        C.append('    {.name = "items", %s, .number = 1, .shape = &shape_%s},' % (
            json_key("items"), c_id(s["member"]["shape"])))
        C.append("};")
        C.append("const af_model_struct af_model_%s = {%s, &%s, members_%s, 1, 1, 0};" % (
            c_id(wn), c_str(wn), pbc_desc(wn), c_id(wn)))
    for sn in structs:
        s = model.shape(sn)
        req = set(s.get("required", []))
        fields = message_fields(model, sn)
        typed = [(f, ("repeated " if lab == "repeated " else "") + t) for f, t, _, _, lab in fields]
        nums, _, _ = assign_numbers(sn, typed, old)
        rows = sorted(zip(fields, nums), key=lambda x: x[1][2])
        C.append("static const af_model_member members_%s[] = {" % c_id(sn))
        for (f, t, mname, shp, lab), (_, _, num) in rows:
            mm = s["members"][mname]
            parts = [".name = %s" % c_str(mname), json_key(mname), ".number = %d" % num,
                     ".shape = &shape_%s" % c_id(shp), ".location = %s" % loc[mm.get("location")]]
            if mm.get("location"):
                parts.append(".location_name = %s" % c_str(mm.get("locationName", mname)))
            if mname in req:
                parts.append(".required = 1")
            if mm.get("idempotencyToken"):
                parts.append(".idempotency_token = 1")
            C.append("    {%s}," % ", ".join(parts))
        C.append("};")
        C.append("const af_model_struct af_model_%s = {%s, &%s, members_%s, %d, 0, %d};" % (
            c_id(sn), c_str(sn), pbc_desc(sn), c_id(sn), len(rows), int(sn in outputs)))
    C.append("")
    for name, op in model.ops.items():
        errs = [e["shape"] for e in op.get("errors", [])]
        C.append("static const char *const errors_%s[] = {%s};" % (name, ", ".join(c_str(e) for e in errs)))
    C.append("const af_model_operation af_model_operations[] = {")
    for name, op in model.ops.items():
        C.append("    {%s, %s, %s, &af_model_%s, &af_model_%s, errors_%s, %d}," % (
            c_str(name), c_str(op["http"]["method"]), c_str(op["http"]["requestUri"]),
            c_id(op["input"]["shape"]), c_id(op["output"]["shape"]), name,
            len(op.get("errors", []))))
    C.append("};")
    C.append("const size_t af_model_operation_count = %d;" % len(model.ops))
    C.append("const af_model_struct *const af_model_structs[] = {")
    for sn in structs + wrappers:
        C.append("    &af_model_%s," % c_id(sn))
    C.append("};")
    C.append("const size_t af_model_struct_count = %d;" % len(structs + wrappers))
    C.append("const char *const af_model_pattern_java[] = {")
    for p in model.patterns:
        C.append("    %s," % c_str(p))
    C.append("};")
    C.append("const char *const af_model_pattern_pcre2[] = {")
    for p in model.patterns:
        C.append("    %s," % c_str(pcre2_of(p)))
    C.append("};")
    C.append("const size_t af_model_pattern_count = %d;" % len(model.patterns))
    return "\n".join(H) + "\n", "\n".join(C) + "\n"


# ---- nanopb bounds ----

def ascii_pattern(p):
    """True when a Java pattern admits only ASCII: no '.' outside a [...] class, no \\S, no
    negated class and no \\u escape."""
    depth, i = 0, 0
    while i < len(p):
        c = p[i]
        if c == "\\":
            if p[i + 1:i + 2] in ("S", "u", "x", "W", "D"):
                return False
            i += 2
            continue
        if c == "[":
            if p[i + 1:i + 2] == "^":
                return False
            depth += 1
        elif c == "]":
            depth -= 1
        elif c == "." and depth == 0:
            return False
        i += 1
    return True


def string_bytes(s):
    """The bytes a string shape's longest value takes in UTF-8, with its NUL: one a character
    when its pattern admits only ASCII, else four."""
    return s["max"] * (1 if ascii_pattern(s.get("pattern", ".*")) else 4) + 1


# A bounded string, list or map becomes a fixed array only while it stays this small; nanopb (as Debian
# builds it, without PB_FIELD_32BIT) cannot hold a message over 64 KiB, so larger ones stay
# callbacks.
NANOPB_ARRAY_BUDGET = 16384


NANOPB_MESSAGE_BUDGET = 60000


def gen_options(model):
    """max_size for strings, max_count for lists and maps the model bounds; unbounded members
    stay callbacks (nanopb's pb_callback_t), and so do the largest submessages of a message
    that would otherwise pass nanopb's 64 KiB limit."""
    L = ["# GENERATED by scripts/gen_model.py from model/appflow-2020-08-23.json: do not edit.",
         "# nanopb bounds for the C client: the model's limits as fixed sizes."]
    sizes, callbacks = {}, []

    def field_size(sn, f, shp):
        s = model.shape(shp)
        if s["type"] == "string" and "enum" not in s:
            if "max" in s and string_bytes(s) <= NANOPB_ARRAY_BUDGET:
                L.append("appflow.v1.%s.%s max_size:%d" % (sn, f, string_bytes(s)))
                return string_bytes(s) + 1
            return 16
        if s["type"] in ("list", "map"):
            inner = model.shape(s["member"]["shape"] if s["type"] == "list" else s["value"]["shape"])
            key = model.shape(s["key"]["shape"]) if s["type"] == "map" else {"max": 0}
            if "max" not in s or inner["type"] != "string" or "enum" in inner or "max" not in inner:
                return 16
            size = string_bytes(inner) + (string_bytes(key) if "max" in key else 0)
            if s["max"] * size > NANOPB_ARRAY_BUDGET:
                return 16
            L.append("appflow.v1.%s.%s max_count:%d" % (sn, f, s["max"]))
            L.append("appflow.v1.%s.%s max_size:%d" % (sn, f, string_bytes(inner)))
            return s["max"] * size + 8
        if s["type"] == "structure":
            return struct_size(shp) + 1
        return 9

    def struct_size(sn):
        if sn in sizes:
            return sizes[sn]
        sizes[sn] = 16  # a cycle counts as a callback
        subs, total = [], 0
        for f, t, mname, shp, lab in message_fields(model, sn):
            n = field_size(sn, f, shp)
            total += n
            if model.shape(shp)["type"] == "structure":
                subs.append((n, f))
        for n, f in sorted(subs, reverse=True):
            if total <= NANOPB_MESSAGE_BUDGET:
                break
            callbacks.append("appflow.v1.%s.%s type:FT_CALLBACK" % (sn, f))
            total -= n - 16
        sizes[sn] = total
        return total

    for sn in model.structures():
        struct_size(sn)
    L += callbacks
    with open(os.path.join(ROOT, "proto", "client.options")) as f:
        L += ["", "# ---- from proto/client.options ----", f.read().rstrip("\n")]
    return "\n".join(L) + "\n"


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    proto_out, gen_out = sys.argv[1], sys.argv[2]
    model = Model(MODEL)
    old = committed_numbers(COMMITTED)
    model.old_enums = committed_enums(COMMITTED)
    proto = gen_proto(model, old)
    h, c = gen_c(model, old)
    write(os.path.join(proto_out, "appflow", "v1", "appflow.proto"), proto)
    write(os.path.join(gen_out, "model", "appflow_model.h"), h)
    write(os.path.join(gen_out, "model", "appflow_model.c"), c)
    write(os.path.join(gen_out, "nanopb", "appflow.options"), gen_options(model))


if __name__ == "__main__":
    main()
