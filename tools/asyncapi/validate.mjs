// Validate an AsyncAPI document with the official parser (@asyncapi/parser),
// resolving its relative $refs to streamseg/schemas/*.json. Exit 1 on any error
// diagnostic (warnings are printed; they fail too unless --allow-warnings).
//
//   node tools/asyncapi/validate.mjs asyncapi.yaml
import { Parser, fromFile } from '@asyncapi/parser';

const args = process.argv.slice(2);
const allowWarnings = args.includes('--allow-warnings');
const file = args.find((a) => !a.startsWith('--')) ?? 'asyncapi.yaml';
const severities = ['error', 'warning', 'info', 'hint'];

const parser = new Parser();
const { document, diagnostics } = await fromFile(parser, file).parse();
let errors = 0;
let warnings = 0;
for (const d of diagnostics) {
  const level = severities[d.severity] ?? String(d.severity);
  if (d.severity === 0) errors += 1;
  if (d.severity === 1) warnings += 1;
  if (d.severity <= 1) {
    console.log(`${level}: ${d.code}: ${d.message} at /${d.path.join('/')}`);
  }
}
if (!document || errors > 0 || (warnings > 0 && !allowWarnings)) {
  console.error(`${file}: INVALID (${errors} errors, ${warnings} warnings)`);
  process.exit(1);
}
const channels = document.channels().all().map((c) => c.address());
const messages = document.allMessages().all().length;
console.log(`${file}: valid AsyncAPI ${document.version()} ` +
  `(${channels.length} channels, ${messages} messages): ${channels.join(', ')}`);
