import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { UserError } from '../util/errors.ts';
import { commandModules } from './commands/index.ts';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export async function buildProgram(): Promise<Command> {
  const program = new Command('facelift')
    .description('FaceLift in TypeScript: one portrait photo in, a 360° 3D Gaussian head out.')
    .version(pkg.version)
    .showHelpAfterError()
    .exitOverride();
  for (const load of commandModules) (await load()).register(program);
  return program;
}

async function main(argv: string[]): Promise<number> {
  const program = await buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof UserError) {
      process.stderr.write(`facelift: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

process.exitCode = await main(process.argv);
