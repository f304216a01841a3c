import type { Command } from 'commander';
import { officialDiffusionComponents } from '../../diffusion/official.ts';
import { countParams } from '../../diffusion/params.ts';
import { OFFICIAL_GSLRM_CONFIG } from '../../lrm/config.ts';
import { countParams as countLrmParams, gslrmParamSpec } from '../../lrm/params.ts';

export interface ComponentSummary {
  name: string;
  params: number;
  keys: number;
}

/** Every official component as facelift-ts declares it: parameter and state-dict key counts (no weights read). */
export function modelsSummary(): { components: ComponentSummary[] } {
  const components: ComponentSummary[] = officialDiffusionComponents().map((c) => ({ name: c.name, params: countParams(c.specs), keys: c.specs.length }));
  const lrm = gslrmParamSpec(OFFICIAL_GSLRM_CONFIG);
  components.push({ name: 'gslrm', params: countLrmParams(lrm), keys: lrm.length });
  return { components };
}

export function formatSummary(s: { components: ComponentSummary[] }): string {
  const lines = [`${'component'.padEnd(16)} ${'parameters'.padStart(14)} ${'keys'.padStart(6)}`];
  for (const c of s.components) lines.push(`${c.name.padEnd(16)} ${c.params.toLocaleString('en-US').padStart(14)} ${String(c.keys).padStart(6)}`);
  const total = s.components.reduce((n, c) => n + c.params, 0);
  lines.push(`${'total'.padEnd(16)} ${total.toLocaleString('en-US').padStart(14)}`);
  return lines.join('\n') + '\n';
}

export function register(program: Command): void {
  const models = program.command('models').description('facts about the models facelift-ts builds');
  models.command('summary')
    .option('--json', 'print one JSON object {"components":[{"name","params","keys"}]}')
    .description('parameter and state-dict key counts of every official component, from the model definitions')
    .action((opts: { json?: boolean }) => {
      const s = modelsSummary();
      process.stdout.write(opts.json ? JSON.stringify(s) + '\n' : formatSummary(s));
    });
}
