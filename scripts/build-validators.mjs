// Build step: write ajv's standalone validator code for the three schemas to dist/validators.cjs,
// so the CLI starts without compiling JSON Schemas (see src/config/schema.ts).
import { writeFileSync } from "node:fs";
import standaloneCode from "ajv/dist/standalone/index.js";
import { SCHEMA_FILES, VALIDATORS_FILE, makeAjv } from "../dist/src/config/ajv-setup.js";

const ajv = makeAjv(true);
const refs = Object.fromEntries(Object.entries(SCHEMA_FILES).map(([kind, file]) => [kind, ajv.getSchema(file).schema.$id ?? file]));
writeFileSync(VALIDATORS_FILE, (standaloneCode.default ?? standaloneCode)(ajv, refs));
