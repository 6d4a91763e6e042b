/* LoRA adapters in PEFT's layout: adapter_config.json (peft_type "LORA", r,
 * lora_alpha, lora_dropout, target_modules, layers_to_transform, fan_in_fan_out true,
 * use_rslora, bias "none", task_type "CAUSAL_LM", base_model_name_or_path) and
 * adapter_model.safetensors with F32 tensors
 *   base_model.model.transformer.h.{i}.{attn|mlp}.{module}.lora_A.weight [r, in]
 *   base_model.model.transformer.h.{i}.{attn|mlp}.{module}.lora_B.weight [out, r]
 * and for the Llama family (fan_in_fan_out false)
 *   base_model.model.model.layers.{i}.{self_attn|mlp}.{module}.lora_A.weight [r, in] */
#ifndef LPL_ADAPTER_IO_H
#define LPL_ADAPTER_IO_H

#include "lpl/core/common.h"
#include "lpl/model/gpt2.h"
#include "lpl/model/lora.h"

LPL_BEGIN_DECLS

/* adapter_config.json text for a GPT-2 adapter config (malloc'd), or NULL on no memory. */
char *lpl_adapter_config_json(const lpl_lora_config *c, const char *base_model_name);
/* The same for an adapter of any architecture (fan_in_fan_out from its model). */
char *lpl_adapter_config_json_for(const lpl_lora *l, const char *base_model_name);

/* Parses adapter_config.json into c (r, alpha, dropout, rslora, targets or regex,
 * layers). LPL_ERR_FORMAT/LPL_ERR_INVALID name the key at fault (a non-LORA
 * peft_type, bias other than "none", a target list too long, ...). */
lpl_status lpl_adapter_config_parse(const char *json, lpl_lora_config *c, lpl_error *err);

/* The PEFT key of module (layer, site) and part 'A' or 'B' into buf. */
void lpl_adapter_key(int layer, lpl_site site, char part, char *buf, size_t size);

/* adapter_model.safetensors bytes (malloc'd into *out, *size). */
lpl_status lpl_adapter_to_safetensors(const lpl_lora *l, void **out, size_t *size, lpl_error *err);

/* Saves both files into dir (created if missing), each via a temporary name and rename. */
lpl_status lpl_adapter_save(const lpl_lora *l, const char *base_model_name, const char *dir,
                            lpl_error *err);

/* Builds an adapter for model shape mc from adapter_config.json text and
 * adapter_model.safetensors bytes: every selected module must have both tensors with
 * the right shapes (F32, F16 or BF16), and no other lora tensor may be present.
 * NULL with err naming the key or file at fault. */
lpl_lora *lpl_adapter_from_memory(const char *config_json, const void *st, size_t st_size,
                                  const lpl_gpt2_config *mc, lpl_error *err);

/* Same from a directory holding the two files. */
lpl_lora *lpl_adapter_load(const char *dir, const lpl_gpt2_config *mc, lpl_error *err);

LPL_END_DECLS

#endif
