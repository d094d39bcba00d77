// SPDX-License-Identifier: MIT
// The demo decoder's entry point: the model, greedy argmax, the seeded PRNG, the safetensors codec.
export { CONFIG_KEY, Decoder, Session, configFromHF, argmax } from './decoder.mjs';
export type { DecoderConfig, LayerWeights, Step, Weights } from './decoder.mjs';
export { mulberry32 } from './ops.mjs';
export { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, readSafetensors, writeSafetensors } from './safetensors.mjs';
export type { Dtype, SafetensorsFile, Tensor } from './safetensors.mjs';
