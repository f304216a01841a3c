import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { OFFICIAL_REPO, snapshotDownload } from '../../io/hf-hub.ts';
import type { SnapshotProgress } from '../../io/hf-hub.ts';

const mb = (n: number) => (n / 2 ** 20).toFixed(1);

/** A cli-progress bar on stderr (silent when stderr is not a terminal). */
function progressBar(): { update: (p: SnapshotProgress) => void; stop: () => void } {
  const bar = new cliProgress.SingleBar({
    format: '{bar} {percentage}% | {done}/{all} MB | file {index}/{count} {file}',
    hideCursor: true,
    etaBuffer: 50,
  }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    update(p) {
      const payload = { done: mb(p.bytes), all: mb(p.totalBytes), index: p.fileIndex + 1, count: p.fileCount, file: p.file };
      if (!started) { bar.start(Math.max(1, p.totalBytes), p.bytes, payload); started = true; }
      bar.update(p.bytes, payload);
    },
    stop() { if (started) bar.stop(); },
  };
}

export function register(program: Command): void {
  const weights = program.command('weights').description('model weights from the Hugging Face hub');
  weights.command('download')
    .description('download a repo snapshot through the Hugging Face cache (resumable, checksummed) into a folder')
    .option('--repo <id>', 'Hugging Face model repo', OFFICIAL_REPO)
    .option('--dir <folder>', 'mirror the files here, like snapshot_download(local_dir=…)', 'checkpoints')
    .option('--revision <rev>', 'branch, tag or commit', 'main')
    .option('--include <patterns...>', 'only files matching these globs (e.g. "gslrm/*")')
    .option('--exclude <patterns...>', 'skip files matching these globs (e.g. "*.md")')
    .option('--cache-only', 'keep the files only in the Hugging Face cache (HF_HUB_CACHE / HF_HOME / ~/.cache/huggingface/hub)')
    .action(async (o: { repo: string; dir: string; revision: string; include?: string[]; exclude?: string[]; cacheOnly?: boolean }) => {
      const bar = progressBar();
      try {
        const r = await snapshotDownload({
          repo: o.repo, revision: o.revision, allowPatterns: o.include, ignorePatterns: o.exclude,
          ...(o.cacheOnly ? {} : { localDir: o.dir }),
          onProgress: bar.update,
        });
        bar.stop();
        process.stdout.write(`${o.repo}@${r.commit.slice(0, 12)}: ${r.files.length} files (${r.downloaded.length} downloaded) in ${r.dir}\n`);
      } finally {
        bar.stop();
      }
    });
}
