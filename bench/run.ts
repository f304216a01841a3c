/**
 * `npm run bench -- <name> [--json] [bench args…]`: runs bench/<name>.ts, prints its figures (a table, or one
 * JSON line per figure with --json) and records them in BENCHMARKS.md under a section for that bench, together
 * with the command that produced them.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { withRatio, type BenchRun, type Figure } from './figure.ts';

const argv = process.argv.slice(2);
const json = argv.includes('--json');
const rest = argv.filter((a) => a !== '--json');
const name = rest.shift();
if (!name || !/^[a-z0-9-]+$/.test(name)) {
  console.error('usage: npm run bench -- <name> [--json] [args…]   (names: the files in bench/, e.g. core, render)');
  process.exit(2);
}
const file = new URL(`./${name}.ts`, import.meta.url);
if (!existsSync(file)) {
  console.error(`no benchmark named "${name}" (expected bench/${name}.ts)`);
  process.exit(2);
}
/** `section(args)`: a bench whose parts run separately names its BENCHMARKS.md section per part. */
const mod = (await import(file.href)) as { run: BenchRun; section?: (args: string[]) => string };

const figures: Figure[] = [];
if (!json) console.log(`${'figure'.padEnd(44)} ${'value'.padStart(12)} unit        ${'baseline'.padStart(12)}  ratio`);
for await (const raw of mod.run(rest)) {
  const f = withRatio(raw);
  figures.push(f);
  if (json) {
    console.log(JSON.stringify({ name: f.name, value: f.value, unit: f.unit, baseline: f.baseline ?? null, ratio: f.ratio ?? null }));
  } else {
    const base = f.baseline === undefined ? '' : fmt(f.baseline);
    const ratio = f.ratio === undefined ? '' : `${f.ratio.toFixed(2)}×${f.baselineName ? ` vs ${f.baselineName}` : ''}`;
    console.log(`${f.name.padEnd(44)} ${fmt(f.value).padStart(12)} ${f.unit.padEnd(11)} ${base.padStart(12)}  ${ratio}${f.note ? `  (${f.note})` : ''}`);
  }
}
record(mod.section?.(rest) ?? name, name, rest, figures);

function fmt(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(1) : Math.abs(v) >= 1 ? v.toFixed(3) : v.toPrecision(3);
}

/** Replaces this bench's section of BENCHMARKS.md (other sections are kept). */
function record(title: string, bench: string, args: string[], figs: Figure[]): void {
  const path = new URL('../BENCHMARKS.md', import.meta.url);
  const header = '# Benchmarks\n\nFigures from `npm run bench -- <name>`; each section says the command, machine and date.\n';
  const text = existsSync(path) ? readFileSync(path, 'utf8') : header;
  const cmd = ['npm run bench --', bench, ...args].join(' ');
  const machine = `${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
  const rows = figs.map((f) =>
    `| ${f.name} | ${fmt(f.value)} ${f.unit} | ${f.baseline === undefined ? '–' : `${fmt(f.baseline)} ${f.unit}`} | ${f.ratio === undefined ? '–' : f.ratio.toFixed(2)} | ${[f.baselineName, f.note].filter(Boolean).join('; ')} |`);
  const section = [
    `## ${title}`,
    '',
    `Command: \`${cmd}\` — ${machine}, ${new Date().toISOString().slice(0, 10)}`,
    '',
    '| figure | value | baseline | ratio (>1 better) | notes |',
    '|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
  const re = new RegExp(`## ${title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n[\\s\\S]*?(?=\\n## |$)`);
  const next = re.test(text) ? text.replace(re, section.trimEnd() + '\n') : `${text.trimEnd()}\n\n${section}`;
  writeFileSync(path, next.endsWith('\n') ? next : `${next}\n`);
}
