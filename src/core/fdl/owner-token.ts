// The service owner's refresh token inside a service definition
// (`environment.secrets.refresh_token`): the one module that knows where it sits, when it is
// in clear, and its sealed form while a definition waits in the outbox ("sealed:" + what the
// SecretBox made of it). Everyone else attaches, strips, seals and opens it through here.
import type { SecretBox } from '../ports.ts';
import { MASK } from './secrets.ts';

/** Its key among a definition's secrets. */
export const OWNER_TOKEN_KEY = 'refresh_token';
/** Marks the token sealed by this manager inside a definition kept in the outbox. */
const SEALED_PREFIX = 'sealed:';

type Secrets = Record<string, string>;
type WithSecrets = { environment?: { variables?: Record<string, string>; secrets?: Secrets } };

/** The token's slot is the one a secret of that key is in. */
export const isOwnerTokenKey = (key: string): boolean => key === OWNER_TOKEN_KEY;

/** The value as the definition has it (clear, "***" or sealed); undefined when absent. */
export const ownerTokenOf = (def: WithSecrets): string | undefined =>
  def.environment?.secrets?.[OWNER_TOKEN_KEY];

/** The token when this definition carries it in clear (not "***", not sealed). */
export const plainOwnerToken = (def: WithSecrets): string | undefined => {
  const t = ownerTokenOf(def);
  return t && t !== MASK && !isSealedOwnerToken(t) ? t : undefined;
};

/** Puts `value` in the definition's secrets (the definition is changed). */
export const attachOwnerToken = (def: WithSecrets, value: string): void => {
  def.environment = {
    ...(def.environment ?? { variables: {} }),
    secrets: { ...(def.environment?.secrets ?? {}), [OWNER_TOKEN_KEY]: value },
  };
};

/** Takes the token out of the definition (which is changed); returns what was there. */
export const stripOwnerToken = (def: WithSecrets): string | undefined => {
  const secrets = def.environment?.secrets;
  if (!secrets || !(OWNER_TOKEN_KEY in secrets)) return undefined;
  const token = secrets[OWNER_TOKEN_KEY];
  delete secrets[OWNER_TOKEN_KEY];
  return token;
};

/** A copy of the secrets without the token (what workers and jobs may see). */
export const withoutOwnerToken = (secrets: Secrets | undefined): Secrets => {
  const { [OWNER_TOKEN_KEY]: _token, ...rest } = secrets ?? {};
  return rest;
};

export const isSealedOwnerToken = (value: string): boolean => value.startsWith(SEALED_PREFIX);

/** The token's form inside a definition kept in the outbox. */
export const sealOwnerToken = (box: SecretBox, plain: string): string => sealedForm(box.seal(plain));

/** The outbox form of a token the SecretBox sealed already (the one kept at rest). */
export const sealedForm = (boxSealed: string): string => `${SEALED_PREFIX}${boxSealed}`;

/** The token in clear from its outbox form (a clear value is returned as it is). */
export const openOwnerToken = (box: SecretBox, value: string): string =>
  isSealedOwnerToken(value) ? box.open(value.slice(SEALED_PREFIX.length)) : value;

/** A definition about to be sent: a copy with the token opened (the kept one stays sealed). */
export const openOwnerTokenIn = (
  box: SecretBox,
  payload: Record<string, unknown>,
): Record<string, unknown> => {
  const sealed = ownerTokenOf(payload as WithSecrets);
  if (!sealed || !isSealedOwnerToken(sealed)) return payload;
  const copy = structuredClone(payload) as WithSecrets;
  attachOwnerToken(copy, openOwnerToken(box, sealed));
  return copy as Record<string, unknown>;
};
