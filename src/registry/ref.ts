import { EdgevolveError } from '../errors/index.ts';
import { isDigest } from '../store/digest.ts';

/** A parsed artifact reference: a remote repository or an OCI image layout directory. */
export type ArtifactRef =
  | { readonly kind: 'registry'; readonly registry: string; readonly repository: string; readonly reference: string; readonly text: string }
  | { readonly kind: 'layout'; readonly dir: string; readonly reference: string; readonly text: string };

const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const REPO_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;

/**
 * Parses `oci-layout:<dir>[:tag|@sha256:…]` or `host[:port]/repo/path[:tag|@sha256:…]`.
 * The registry host must be explicit (no Docker Hub default): devices should name the
 * registry they trust.
 */
export function parseRef(text: string): ArtifactRef {
  if (text.startsWith('oci-layout:')) {
    const rest = text.slice('oci-layout:'.length);
    const at = rest.lastIndexOf('@');
    if (at > 0 && isDigest(rest.slice(at + 1))) return { kind: 'layout', dir: rest.slice(0, at), reference: rest.slice(at + 1), text };
    const colon = rest.lastIndexOf(':');
    if (colon > 0 && TAG_RE.test(rest.slice(colon + 1))) return { kind: 'layout', dir: rest.slice(0, colon), reference: rest.slice(colon + 1), text };
    if (rest === '') throw new EdgevolveError('E_REGISTRY_REF', `${text}: the layout directory is missing`);
    return { kind: 'layout', dir: rest, reference: 'latest', text };
  }
  const slash = text.indexOf('/');
  const host = slash < 0 ? '' : text.slice(0, slash);
  if (host === '' || !(host.includes('.') || host.includes(':') || host === 'localhost')) {
    throw new EdgevolveError('E_REGISTRY_REF', `${JSON.stringify(text)} does not start with a registry host (host[:port]/repo:tag), nor is it oci-layout:<dir>:tag`);
  }
  let path = text.slice(slash + 1);
  let reference = 'latest';
  const at = path.indexOf('@');
  if (at >= 0) {
    reference = path.slice(at + 1);
    path = path.slice(0, at);
    if (!isDigest(reference)) throw new EdgevolveError('E_REGISTRY_REF', `${text}: ${reference} is not a sha256 digest`);
  } else {
    const colon = path.lastIndexOf(':');
    if (colon >= 0) {
      reference = path.slice(colon + 1);
      path = path.slice(0, colon);
      if (!TAG_RE.test(reference)) throw new EdgevolveError('E_REGISTRY_REF', `${text}: tag ${JSON.stringify(reference)} is not valid`);
    }
  }
  if (path === '' || !path.split('/').every((c) => REPO_COMPONENT_RE.test(c))) {
    throw new EdgevolveError('E_REGISTRY_REF', `${text}: repository ${JSON.stringify(path)} must be lowercase components separated by /`);
  }
  return { kind: 'registry', registry: host, repository: path, reference, text };
}
