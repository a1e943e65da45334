// Prints the DMMF (Prisma's description of the models: table and column names, types, native
// types, defaults, relations, indexes) of the schema file given, as JSON; an invalid schema
// prints Prisma's validation errors on stderr and exits 1. Runs on the WebAssembly build of
// Prisma's schema engine, so it needs no native engine.
import { readFileSync } from "node:fs";
import wasm from "@prisma/prisma-schema-wasm";

const path = process.argv[2];
const files = [[path, readFileSync(path, "utf8")]];
try {
  wasm.validate(JSON.stringify({ prismaSchema: files }));
  process.stdout.write(wasm.get_dmmf(JSON.stringify({ prismaSchema: files })));
} catch (error) {
  const text = error instanceof Error ? error.message : String(error);
  let message = text;
  try {
    message = JSON.parse(text).message ?? text;
  } catch {}
  process.stderr.write(`${path} is not a valid Prisma schema:\n${message.replace(/\x1b\[[0-9;]*m/g, "")}\n`);
  process.exit(1);
}
