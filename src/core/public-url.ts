// The address other clusters reach this manager at: the one configured (`--public-url`) as
// given, else the one derived from host and port — whose port, when 0 was asked for, is known
// only once the server listens.

/** The public URL once listening on `bound` (the listener's own URL). */
export const boundPublicUrl = (
  c: { publicUrl: string; publicUrlConfigured: boolean; port: number },
  bound: string,
): string =>
  !c.publicUrlConfigured && c.port === 0
    ? c.publicUrl.replace(/:0$/, `:${new URL(bound).port}`)
    : c.publicUrl;
