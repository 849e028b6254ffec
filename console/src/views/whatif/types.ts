/** The answers of the what-if routes (src/server/routes/whatif.ts), as the API's wire types declare them. */
export type { AdmissionAnswerV1 as StartAnswer, WhatIfShareV1 as ShareAnswer } from '../../../../src/api/types.ts';
