/**
 * Gates a test on a tool or data package from Debian that a fresh machine may lack.
 *
 * Without the tool the test is skipped with a message naming the Debian package to
 * install, so `npm test` passes on a fresh machine; under `CI=true` the absence is a
 * failure, because CI installs every package (`.ci/run`) and a silent skip there
 * would hide a broken setup.
 */
export interface RequiredTool {
  /** What the test needs, for the message: `mosquitto`, `the ONNX test corpus`. */
  readonly name: string;
  /** True when the tool is usable on this machine. */
  readonly check: () => boolean;
  /** The Debian package that provides it. */
  readonly debianPackage: string;
}

/**
 * Returns true when the tool is present and the test should run. Returns false (after
 * printing why) when it is absent outside CI; throws when it is absent under CI=true.
 * Use at module level: `describe.runIf(requireTool({...}))(...)`.
 */
export function requireTool(tool: RequiredTool): boolean {
  let present: boolean;
  try {
    present = tool.check();
  } catch {
    present = false;
  }
  if (present) return true;
  const message = `${tool.name} is not available: install the Debian package \`${tool.debianPackage}\` (apt-get install -y ${tool.debianPackage})`;
  if (process.env.CI === 'true') throw new Error(`${message}; CI=true requires it`);
  console.warn(`skipping: ${message}`);
  return false;
}
