#!/usr/bin/env node
// `npm run pack:client [-- --out DIR]`: builds the client SDK (src/client and
// the src/protocol files it imports) as its own npm package, tpsd-client, and
// writes tpsd-client-VERSION.tgz to DIR (default: the repository root). The
// tarball's path is the last line printed.
//
// Why a script under .ci/ and not a `tpsd` verb: packing is a build step of
// this repository (it needs TypeScript, a devDependency, and the sources
// beside it), not something the installed daemon does; src/ is what ships,
// and a verb there would have to reach outside src/ for the SDK's sources.
//
// The package has compiled JavaScript twice, ESM (dist/esm, "type": "module")
// and CommonJS (dist/cjs, its own package.json says "type": "commonjs"), each
// with its .d.ts, chosen by "exports" (import/require). It depends only on
// msgpackr and ws, at the versions the repository pins; the build fails if
// the compiled code imports anything else, or if a file outside src/client
// and src/protocol was pulled in.
//
// Plain Node (no tsx): it runs before anything else is built.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const PACKAGE_NAME = 'tpsd-client';
/** What the compiled SDK may import besides its own files (and the package.json pins of each). */
const RUNTIME_DEPENDENCIES = ['msgpackr', 'ws'];
/** The only folders of src/ the SDK may be built from (test/unit/layering.test.ts holds the imports to this). */
const SOURCE_FOLDERS = ['client', 'protocol'];

function parseArgs(argv) {
  const args = { out: ROOT };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out' && i + 1 < argv.length) args.out = resolve(argv[++i]);
    else if (argv[i] === '--help' || argv[i] === '-h') {
      console.log('usage: node .ci/pack-client.mjs [--out DIR]   (writes DIR/tpsd-client-VERSION.tgz; prints its path last)');
      process.exit(0);
    } else {
      console.error(`pack-client: unknown argument ${argv[i]}`);
      process.exit(2);
    }
  }
  return args;
}

/** tsc options shared by both builds; `format` is 'esm' or 'cjs'. */
function tsconfig(format, outDir) {
  const common = {
    target: 'ES2022',
    lib: ['ES2022', 'DOM'],
    strict: true,
    declaration: true,
    rewriteRelativeImportExtensions: true,
    allowImportingTsExtensions: true,
    skipLibCheck: true,
    types: [],
    rootDir: join(ROOT, 'src'),
    outDir,
  };
  const byFormat = format === 'esm'
    ? { module: 'NodeNext', moduleResolution: 'NodeNext', verbatimModuleSyntax: true }
    : { module: 'CommonJS', moduleResolution: 'Node10', esModuleInterop: true };
  return { compilerOptions: { ...common, ...byFormat }, files: [join(ROOT, 'src/client/index.ts')] };
}

function compile(stage, format) {
  const outDir = join(stage, 'dist', format);
  const configFile = join(stage, `tsconfig.${format}.json`);
  writeFileSync(configFile, JSON.stringify(tsconfig(format, outDir), null, 2));
  const tsc = createRequire(join(ROOT, 'package.json')).resolve('typescript/bin/tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', configFile], { cwd: stage, stdio: 'pipe' });
  } catch (err) {
    throw new Error(`tsc (${format}) failed:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
  }
  return outDir;
}

function filesUnder(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*(?:\/\*.*?\*\/\s*)?|\brequire\s*\(\s*(?:\/\*.*?\*\/\s*)?)(['"])([^'"]+)\1/g;

/**
 * tsc rewrites `./x.ts` to `./x.js` in JavaScript but not in declarations:
 * rewrites those, then checks what every file imports.
 */
function fixAndCheck(outDir) {
  const problems = [];
  for (const file of filesUnder(outDir)) {
    const rel = relative(outDir, file);
    if (!SOURCE_FOLDERS.includes(rel.split(/[\\/]/)[0])) problems.push(`${rel}: built from outside src/{${SOURCE_FOLDERS.join(',')}}`);
    if (!file.endsWith('.js') && !file.endsWith('.d.ts')) continue;
    let text = readFileSync(file, 'utf8');
    if (file.endsWith('.d.ts')) {
      text = text.replace(SPECIFIER, (m, q, spec) => (spec.startsWith('.') && spec.endsWith('.ts') ? m.replace(`${q}${spec}${q}`, `${q}${spec.slice(0, -3)}.js${q}`) : m));
      writeFileSync(file, text);
    }
    for (const [, , spec] of text.matchAll(SPECIFIER)) {
      if (spec.startsWith('.')) {
        if (!spec.endsWith('.js')) problems.push(`${rel}: imports ${spec} (not a .js path)`);
      } else if (!RUNTIME_DEPENDENCIES.includes(spec)) {
        problems.push(`${rel}: imports ${spec}, not a dependency of ${PACKAGE_NAME}`);
      }
    }
  }
  if (problems.length > 0) throw new Error(`the built SDK is not self-contained:\n  ${problems.join('\n  ')}`);
}

function packageJson(repo) {
  const dependencies = {};
  for (const name of RUNTIME_DEPENDENCIES) {
    const version = repo.dependencies?.[name];
    if (!version) throw new Error(`package.json pins no version of ${name}`);
    dependencies[name] = version;
  }
  const entry = (format) => ({ types: `./dist/${format}/client/index.d.ts`, default: `./dist/${format}/client/index.js` });
  return {
    name: PACKAGE_NAME,
    version: repo.version,
    description: 'Client SDK for tpsd, the adaptive rate-limit daemon (ESM and CommonJS, with types)',
    license: repo.license,
    type: 'module',
    engines: repo.engines,
    main: './dist/cjs/client/index.js',
    types: './dist/cjs/client/index.d.ts',
    exports: {
      '.': { import: entry('esm'), require: entry('cjs') },
      './package.json': './package.json',
    },
    files: ['dist', 'README.md'],
    sideEffects: false,
    dependencies,
  };
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const repo = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const stage = mkdtempSync(join(tmpdir(), 'tpsd-client-pack-'));
  try {
    for (const format of ['esm', 'cjs']) fixAndCheck(compile(stage, format));
    // dist/cjs is CommonJS whatever the package's "type" says.
    writeFileSync(join(stage, 'dist/cjs/package.json'), `${JSON.stringify({ type: 'commonjs' })}\n`);
    writeFileSync(join(stage, 'package.json'), `${JSON.stringify(packageJson(repo), null, 2)}\n`);
    // Links into the repository do not resolve inside the package: name the file instead.
    const readme = readFileSync(join(ROOT, 'src/client/README.md'), 'utf8')
      .replace(/\[([^\]]+)\]\(\.\.\/\.\.\/([^)]+)\)/g, (_m, text, path) => (text === path ? `${path} (in the tpsd repository)` : `${text} (${path} in the tpsd repository)`));
    writeFileSync(join(stage, 'README.md'), readme);
    for (const f of readdirSync(stage)) if (f.startsWith('tsconfig.')) rmSync(join(stage, f));
    const out = execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', args.out], {
      cwd: stage,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, npm_config_fund: 'false', npm_config_audit: 'false', npm_config_update_notifier: 'false' },
    });
    const [info] = JSON.parse(out);
    console.log(`${PACKAGE_NAME}@${repo.version}: ${info.entryCount} files, ${info.size} bytes packed`);
    console.log(join(args.out, info.filename));
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

try {
  main();
} catch (err) {
  console.error(`pack-client: ${err.message}`);
  process.exit(1);
}
