// Writes src/schema.d.ts (the `paths` and `components` types) from the OpenAPI
// document that `vestnik openapi` prints. The document is read from the file
// named by OPENAPI_JSON (default: openapi.json beside package.json); the
// generated file is never committed, so every check is against the document
// given, not a stale copy.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import openapiTS, { astToString, COMMENT_HEADER } from "openapi-typescript";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const input = resolve(process.cwd(), process.env.OPENAPI_JSON ?? resolve(root, "openapi.json"));
const output = resolve(root, "src/schema.d.ts");

if (!existsSync(input)) {
  console.error(
    `no OpenAPI document at ${input}\n` +
      "set OPENAPI_JSON=<file>, write one with `vestnik openapi > web/api/openapi.json`, " +
      "or run scripts/check-ts-client (it builds the server and does both)",
  );
  process.exit(1);
}

let document;
try {
  document = JSON.parse(readFileSync(input, "utf8"));
} catch (e) {
  console.error(`${input} is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}
if (typeof document.openapi !== "string" || !document.openapi.startsWith("3.")) {
  console.error(`${input} is not an OpenAPI 3 document (openapi: ${JSON.stringify(document.openapi)})`);
  process.exit(1);
}

let ast;
try {
  ast = await openapiTS(pathToFileURL(input), { silent: true });
} catch (e) {
  // openapi-typescript has printed the document's problems (✘ lines) already.
  console.error(`openapi-typescript refused ${input}: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}
const source = document.info?.version ? ` (${document.info.title} ${document.info.version})` : "";
writeFileSync(output, `${COMMENT_HEADER}// Generated from ${input}${source} by scripts/generate.mjs.\n\n${astToString(ast)}`);
console.log(`${input} -> src/schema.d.ts: ${Object.keys(document.paths ?? {}).length} paths, ` +
  `${Object.keys(document.components?.schemas ?? {}).length} schemas`);
