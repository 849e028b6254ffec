/**
 * The TPM 2.0 structure readers under their old name: tpm-marshal.ts (reader, algorithm tables, ECDSA encodings),
 * tpm-attest.ts (TPMS_ATTEST, TPMT_SIGNATURE), tpm-public.ts (TPM2B_PUBLIC, attestation keys) and tpm-pcr-file.ts
 * (tpm2-tools PCR files). Kept so that existing imports keep working; new code imports the module it needs.
 */
export { algHex, ecdsaDer, ecdsaP1363, hashById, hashByName, TPM_ALG, toHex, type HashInfo, type HashName, type PcrSelection } from './tpm-marshal.ts';
export {
  parseAttest,
  parseSignature,
  TPM_GENERATED_VALUE,
  TPM_ST_ATTEST_QUOTE,
  type Attest,
  type ClockInfo,
  type QuoteInfo,
  type TpmSignature,
} from './tpm-attest.ts';
export {
  attestationKeyFromKeyObject,
  loadAttestationKey,
  parsePublic,
  TPMA_OBJECT,
  type AlgorithmDetail,
  type AttestationKey,
  type CurveName,
  type TpmPublic,
  type TpmPublicEcc,
  type TpmPublicRsa,
} from './tpm-public.ts';
export { parsePcrFile, parsePcrValues, type PcrBanks } from './tpm-pcr-file.ts';
