"""A table's shape as the database has it and as a Prisma schema declares it, in one form, so that
the two can be compared: each column's type (as PostgreSQL's format_type prints it), nullability
and default; each index's kind, method and columns with their sort order, by name; the foreign
keys with their referential actions.

The schema's side comes from Prisma's DMMF, which leaves out fields of an `Unsupported("...")`
type; those are read from the schema's text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

import sqlalchemy as sa


class Column(NamedTuple):
    type: str
    not_null: bool
    default: str | None


class ForeignKey(NamedTuple):
    columns: tuple[str, ...]
    table: str
    referenced: tuple[str, ...]
    on_delete: str
    on_update: str

    def __str__(self) -> str:
        return (
            f"foreign key ({', '.join(self.columns)}) -> {self.table}({', '.join(self.referenced)}) "
            f"ON DELETE {self.on_delete} ON UPDATE {self.on_update}"
        )


@dataclass
class TableShape:
    columns: dict[str, Column] = field(default_factory=dict)
    indexes: dict[str, str] = field(default_factory=dict)  # name -> "UNIQUE btree (a, b DESC)"
    foreign_keys: set[ForeignKey] = field(default_factory=set)


def differences(table: str, database: TableShape, schema: TableShape) -> list[str]:
    """Every way the schema's shape of `table` differs from the database's, one line each."""
    found = []
    for name in sorted(database.columns.keys() | schema.columns.keys()):
        db_column, schema_column = database.columns.get(name), schema.columns.get(name)
        if schema_column is None:
            found.append(f"{table}.{name}: in the database, not in the schema")
        elif db_column is None:
            found.append(f"{table}.{name}: in the schema, not in the database")
        else:
            for part in Column._fields:
                db_value, schema_value = getattr(db_column, part), getattr(schema_column, part)
                if db_value != schema_value:
                    found.append(f"{table}.{name}: {part} {db_value!r} in the database, {schema_value!r} in the schema")
    for name in sorted(database.indexes.keys() | schema.indexes.keys()):
        db_index, schema_index = database.indexes.get(name), schema.indexes.get(name)
        if db_index != schema_index:
            found.append(
                f"index {name} on {table}: {db_index or 'absent'} in the database, "
                f"{schema_index or 'absent'} in the schema"
            )
    only_database = database.foreign_keys - schema.foreign_keys
    only_schema = schema.foreign_keys - database.foreign_keys
    found += [f"{table}: {key} in the database, not in the schema" for key in sorted(only_database)]
    found += [f"{table}: {key} in the schema, not in the database" for key in sorted(only_schema)]
    return found


def index_text(kind: str, method: str, columns: list[str]) -> str:
    prefix = {"primary": "PRIMARY KEY ", "unique": "UNIQUE ", "index": ""}[kind]
    return f"{prefix}{method} ({', '.join(columns)})"


# ---------------------------------------------------------------------------------------------
# The database's side: PostgreSQL's catalog.

_LITERAL = re.compile(r"^'((?:[^']|'')*)'::[a-z ]+(?:\(\d+(?:,\d+)?\))?(?:\[\])?$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
# pg_index.indoption bits: 1 descending, 2 nulls first; btree's defaults are ASC NULLS LAST and
# DESC NULLS FIRST, the only orders a Prisma schema can declare.
_ORDER = {0: "", 3: " DESC", 1: " DESC NULLS LAST", 2: " NULLS FIRST"}


def default_text(expression: str | None) -> str | None:
    """A default as compared: a literal without its cast ('0'::numeric -> 0), a number in its
    shortest form (0.0 -> 0), else the expression."""
    if expression is None:
        return None
    literal = _LITERAL.match(expression)
    text = literal.group(1).replace("''", "'") if literal else expression
    if _NUMBER.match(text):
        return format(Decimal(text).normalize(), "f")
    return text


def _canonical_type(formatted: str) -> str:
    # PostgreSQL's default precision of timestamps and times is 6, which format_type leaves out.
    return re.sub(r"^(timestamp|time) (with|without) time zone", r"\1(6) \2 time zone", formatted)


def database_shape(conn: sa.Connection, table: str, beyond_prisma: dict[str, str]) -> TableShape | None:
    """The shape of public.`table` in the database, None where there is no such table. Indexes
    named in `beyond_prisma` are shown as pg_get_indexdef prints them."""
    oid = conn.execute(sa.text("SELECT to_regclass(:t)::oid"), {"t": f"public.{table}"}).scalar()
    if oid is None:
        return None
    shape = TableShape()
    names = {}
    for number, name, formatted, not_null, default in conn.execute(
        sa.text(
            "SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
            "pg_get_expr(d.adbin, d.adrelid) "
            "FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
            "WHERE a.attrelid = :oid AND a.attnum > 0 AND NOT a.attisdropped"
        ),
        {"oid": oid},
    ):
        names[number] = name
        shape.columns[name] = Column(_canonical_type(formatted), not_null, default_text(default))
    for name, primary, unique, method, plain, definition, key_count, keys, options in conn.execute(
        sa.text(
            "SELECT i.relname, x.indisprimary, x.indisunique, am.amname, "
            "x.indpred IS NULL AND x.indexprs IS NULL, pg_get_indexdef(x.indexrelid), x.indnkeyatts, "
            "x.indkey::int2[], x.indoption::int2[] "
            "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_am am ON am.oid = i.relam "
            "WHERE x.indrelid = :oid"
        ),
        {"oid": oid},
    ):
        if name in beyond_prisma or not plain or len(keys) != key_count:
            # partial, on expressions, or with INCLUDE columns: nothing a schema's index says
            shape.indexes[name] = definition
            continue
        kind = "primary" if primary else "unique" if unique else "index"
        columns = [f"{names[key]}{_ORDER[option & 3]}" for key, option in zip(keys, options)]
        shape.indexes[name] = index_text(kind, method, columns)
    for columns, referenced_table, referenced, on_delete, on_update in conn.execute(
        sa.text(
            "SELECT "
            "(SELECT array_agg(a.attname ORDER BY k.n) FROM unnest(c.conkey) WITH ORDINALITY k(num, n) "
            " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num), "
            "r.relname, "
            "(SELECT array_agg(a.attname ORDER BY k.n) FROM unnest(c.confkey) WITH ORDINALITY k(num, n) "
            " JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.num), "
            "c.confdeltype, c.confupdtype "
            "FROM pg_constraint c JOIN pg_class r ON r.oid = c.confrelid "
            "WHERE c.conrelid = :oid AND c.contype = 'f'"
        ),
        {"oid": oid},
    ):
        shape.foreign_keys.add(
            ForeignKey(tuple(columns), referenced_table, tuple(referenced), _ACTIONS[on_delete], _ACTIONS[on_update])
        )
    return shape


# ---------------------------------------------------------------------------------------------
# The schema's side: the DMMF of check/dmmf.mjs, and the schema's text for Unsupported fields.

# Prisma's native type attributes (@db.X) for PostgreSQL, as format_type prints the type.
_NATIVE = {
    "Text": "text",
    "VarChar": "character varying",
    "Char": "character",
    "Uuid": "uuid",
    "Xml": "xml",
    "Inet": "inet",
    "Citext": "citext",
    "Bit": "bit",
    "VarBit": "bit varying",
    "Boolean": "boolean",
    "Integer": "integer",
    "SmallInt": "smallint",
    "BigInt": "bigint",
    "Oid": "oid",
    "DoublePrecision": "double precision",
    "Real": "real",
    "Decimal": "numeric",
    "Money": "money",
    "Date": "date",
    "Json": "json",
    "JsonB": "jsonb",
    "ByteA": "bytea",
}
_NATIVE_TIME = {
    "Timestamp": "timestamp({}) without time zone",
    "Timestamptz": "timestamp({}) with time zone",
    "Time": "time({}) without time zone",
    "Timetz": "time({}) with time zone",
}
# The column type Prisma gives a scalar without @db.X on PostgreSQL.
_SCALAR = {
    "String": "text",
    "Boolean": "boolean",
    "Int": "integer",
    "BigInt": "bigint",
    "Float": "double precision",
    "Decimal": "numeric(65,30)",
    "DateTime": "timestamp(3) without time zone",
    "Json": "jsonb",
    "Bytes": "bytea",
}
# Defaults Prisma Client fills in itself: the database has none.
_CLIENT_DEFAULTS = {"cuid", "uuid", "nanoid", "ulid"}
_PRISMA_ACTIONS = {
    "Cascade": "CASCADE",
    "Restrict": "RESTRICT",
    "NoAction": "NO ACTION",
    "SetNull": "SET NULL",
    "SetDefault": "SET DEFAULT",
}


def _field_type(field_: dict, enums: dict[str, str]) -> str:
    native = field_.get("nativeType")
    if field_["kind"] == "enum":
        base = enums[field_["type"]]
    elif native is None:
        base = _SCALAR[field_["type"]]
    elif native[0] in _NATIVE_TIME:
        # @db.Timestamp without a precision would be PostgreSQL's 6; the fragment always says it
        base = _NATIVE_TIME[native[0]].format(native[1][0] if native[1] else 6)
    else:
        base = _NATIVE[native[0]] + (f"({','.join(native[1])})" if native[1] else "")
    return base + ("[]" if field_["isList"] else "")


def _default(field_: dict, table: str, column: str) -> str | None:
    if "default" not in field_:
        return None
    value = field_["default"]
    if isinstance(value, dict):
        name, args = value["name"], value.get("args", [])
        if name in _CLIENT_DEFAULTS:
            return None
        if name == "dbgenerated":
            return default_text(args[0])
        if name == "now":
            return "CURRENT_TIMESTAMP"
        if name == "autoincrement":
            return f"nextval('{table}_{column}_seq'::regclass)"
        return f"{name}({', '.join(map(str, args))})"
    if isinstance(value, bool):
        return "true" if value else "false"
    return default_text(str(value))


_MODEL = re.compile(r"^model\s+(\w+)\s*\{(.*?)^\}", re.M | re.S)
_UNSUPPORTED = re.compile(r'^\s*(\w+)\s+Unsupported\("([^"]+)"\)(\?)?(.*)$', re.M)
_MAP = re.compile(r'@map\("([^"]+)"\)')
_DBGENERATED = re.compile(r'@default\(dbgenerated\("((?:[^"\\]|\\.)*)"\)\)')


def unsupported_columns(schema_text: str, model: str) -> dict[str, Column]:
    """The columns of `model`'s fields of an Unsupported("...") type, which the DMMF leaves out."""
    columns = {}
    for name, body in _MODEL.findall(schema_text):
        if name != model:
            continue
        for field_name, type_, optional, rest in _UNSUPPORTED.findall(body):
            mapped = _MAP.search(rest)
            generated = _DBGENERATED.search(rest)
            default = generated.group(1).replace('\\"', '"') if generated else None
            columns[mapped.group(1) if mapped else field_name] = Column(type_, not optional, default_text(default))
    return columns


def schema_shapes(dmmf: dict, schema_text: str, beyond_prisma: dict[str, dict[str, str]]) -> dict[str, TableShape]:
    """Each model's table and its shape as the schema declares it, by table name. The indexes of
    `beyond_prisma` (table -> name -> pg_get_indexdef) are declared beside the schema, since no
    schema can say them."""
    datamodel = dmmf["datamodel"]
    enums = {enum["name"]: enum.get("dbName") or enum["name"] for enum in datamodel["enums"]}
    tables = {model["name"]: model.get("dbName") or model["name"] for model in datamodel["models"]}
    columns_of = {
        model["name"]: {f["name"]: f.get("dbName") or f["name"] for f in model["fields"] if f["kind"] != "object"}
        for model in datamodel["models"]
    }
    shapes = {}
    for model in datamodel["models"]:
        table, column = tables[model["name"]], columns_of[model["name"]]
        shape = shapes[table] = TableShape()
        for field_ in model["fields"]:
            if field_["kind"] == "object":
                if field_.get("relationFromFields"):
                    optional = any(
                        not f["isRequired"] for f in model["fields"] if f["name"] in field_["relationFromFields"]
                    )
                    on_delete = field_.get("relationOnDelete") or ("SetNull" if optional else "Restrict")
                    on_update = field_.get("relationOnUpdate") or "Cascade"
                    shape.foreign_keys.add(
                        ForeignKey(
                            tuple(column[f] for f in field_["relationFromFields"]),
                            tables[field_["type"]],
                            tuple(columns_of[field_["type"]][f] for f in field_["relationToFields"]),
                            _PRISMA_ACTIONS[on_delete],
                            _PRISMA_ACTIONS[on_update],
                        )
                    )
                continue
            name = column[field_["name"]]
            shape.columns[name] = Column(
                _field_type(field_, enums), field_["isRequired"], _default(field_, table, name)
            )
        shape.columns.update(unsupported_columns(schema_text, model["name"]))
        shape.indexes.update(beyond_prisma.get(table, {}))
    for index in datamodel["indexes"]:
        table, column = tables[index["model"]], columns_of[index["model"]]
        kind = {"id": "primary", "unique": "unique", "normal": "index"}[index["type"]]
        names = [column[f["name"]] for f in index["fields"]]
        # Prisma's own names where the schema gives none (map: "...")
        name = index.get("dbName") or {
            "primary": f"{table}_pkey",
            "unique": f"{table}_{'_'.join(names)}_key",
            "index": f"{table}_{'_'.join(names)}_idx",
        }[kind]
        ordered = [f"{n}{' DESC' if f.get('sortOrder') == 'desc' else ''}" for n, f in zip(names, index["fields"])]
        shapes[table].indexes[name] = index_text(kind, (index.get("algorithm") or "BTree").lower(), ordered)
    return shapes
