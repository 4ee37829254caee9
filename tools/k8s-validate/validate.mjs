// Validates Kubernetes manifests (multi-document YAML on stdin or in a file)
// without a cluster:
//   1. each object against its kubernetes-models schema (types, required
//      fields, formats); custom resources of the operators the overlays use
//      (prometheus-operator's monitoring.coreos.com, cert-manager.io) against
//      the schemas of their CRDs, from the @kubernetes-models packages;
//   2. each object as a typed TypeScript literal of its kubernetes-models
//      interface, whose excess-property check rejects unknown fields at any
//      depth (the schemas alone allow them).
// Prints one line per problem and exits 1 if there is any.
//
//   node validate.mjs [FILE]
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import ts from "typescript";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const text = readFileSync(process.argv[2] ?? 0, "utf8");
const problems = [];
const objects = [];

// API groups of custom resources -> the package with their models. Any other
// group not in kubernetes-models is an unknown kind.
const crdPackages = {
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
  "cert-manager.io": "@kubernetes-models/cert-manager",
};

function modulePathOf(apiVersion, kind) {
  const group = String(apiVersion).includes("/") ? String(apiVersion).split("/")[0] : "";
  const pkg = crdPackages[group] ?? "kubernetes-models";
  // "apps/v1" -> "kubernetes-models/apps/v1/Deployment"; core "v1" -> "v1/Service".
  return `${pkg}/${apiVersion}/${kind}`;
}

for (const doc of parseAllDocuments(text)) {
  if (doc.errors.length) {
    problems.push(`YAML: ${doc.errors[0].message}`);
    continue;
  }
  const obj = doc.toJS();
  if (obj == null) continue;
  const { apiVersion, kind } = obj;
  const name = `${kind}/${obj?.metadata?.name ?? "?"}`;
  const modulePath = modulePathOf(apiVersion, kind);
  let model;
  try {
    model = require(modulePath)[kind];
  } catch {
    problems.push(`${name}: unknown apiVersion/kind ${apiVersion} ${kind}`);
    continue;
  }
  try {
    new model(obj).validate();
  } catch (e) {
    problems.push(`${name}: ${e.message}`);
  }
  objects.push({ name, modulePath, kind, obj });
}

// Excess-property (unknown field) and type check through the TypeScript
// compiler, one typed constant per object.
if (objects.length) {
  const lines = objects.map(
    (o, i) => `import type { I${o.kind} as T${i} } from "${o.modulePath}";\n` +
      `export const m${i}: T${i} = ${JSON.stringify(o.obj, null, 1)};`);
  const dir = mkdtempSync(join(tmpdir(), "k8s-validate-"));
  const file = join(dir, "manifests.ts");
  writeFileSync(file, lines.join("\n"));
  const program = ts.createProgram([file], {
    noEmit: true, strict: true, skipLibCheck: true,
    module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
    typeRoots: [], baseUrl: here, paths: { "*": [join(here, "node_modules", "*")] },
  });
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const msg = ts.flattenDiagnosticMessageText(d.messageText, "\n").split("\n")[0];
    let which = "";
    if (d.file && d.start !== undefined) {
      const upTo = d.file.text.slice(0, d.start);
      const index = (upTo.match(/export const m(\d+)/g) ?? []).length - 1;
      which = objects[index] ? `${objects[index].name}: ` : "";
    }
    problems.push(`${which}${msg}`);
  }
  rmSync(dir, { recursive: true, force: true });
}

for (const p of problems) console.log(p);
console.log(`${objects.length} objects checked, ${problems.length} problems`);
process.exit(problems.length ? 1 : 0);
