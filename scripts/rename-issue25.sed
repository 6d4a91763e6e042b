# One word per concept (issue 25): a placement is where adapters go; a training is
# one placement at one seed. Whole-word identifier renames, re-appliable to merged code:
#   sed -i -E -f scripts/rename-issue25.sed FILES   (not over this file itself)
s/\blpl_placement_run\b/lpl_training/g
s/\blpl_placement_status\b/lpl_training_status/g
s/\bLPL_PLACEMENT_(PENDING|RUNNING|DONE|FAILED)\b/LPL_TRAINING_\1/g
s/\blpl_placement_summary\b/lpl_training_summary/g
s/\blpl_run_n_placements\b/lpl_run_n_trainings/g
s/\blpl_run_placement_status\b/lpl_run_training_status/g
s/\blpl_run_placement_json\b/lpl_run_training_json/g
s/\bplacement_release\b/training_release/g
s/\bnote_placement_memory\b/note_training_memory/g
s/\bfail_placement\b/fail_training/g
s/\bremaining_placements\b/remaining_trainings/g
s/\bprepare_placements\b/prepare_trainings/g
s/\bwith_placement\b/with_training/g
s/\bplacement_cjson\b/training_cjson/g
s/\bplacement_adapter\b/training_adapter/g
# event types (engine -> worker -> page; docs/WASM_API.md)
s/\bplacement_done\b/training_done/g
s/\bplacement_failed\b/training_failed/g
s/\bplacement_memory\b/training_memory/g
# the page (web/): functions over a results document's trainings and the stored ones
s/\bplacementsOf\b/trainingsOf/g
s/\bsavePlacement\b/saveTraining/g
s/\bupdatePlacement\b/updateTraining/g
s/\blistPlacements\b/listTrainings/g
s/\bclearPlacements\b/clearTrainings/g
s/\bstoredPlacements\b/storedTrainings/g
# applied on wave3c-rename, beyond the list above (whole words, re-appliable):
# the progress field (lpl_run_progress.training)
s/\b(prog|pg)(\.|->)placement\b/\1\2training/g
# the start event's and results.json schedule's key; the CLI's test flag
s/\bsteps_per_placement\b/steps_per_training/g
s/--stop-after-placements\b/--stop-after-trainings/g
# events: `run`/`index` became `training`/`placement_index` (docs/WASM_API.md "Events")
s/\bev\.run \?\? ev\.index\b/ev.training/g
s/\bev\.run\b/ev.training/g
s/\bev\.index\b/ev.placement_index/g
# Not expressible as whole-word renames, check by hand in merged code: results.json's
# top-level "placements" list is now "trainings" (read it with lpl_results_trainings in C,
# trainingsOf in JS); the event keys "run"/"index" written in C (new_event); the worker's
# adapter message {training, placement_index}; lab_generate's request key "training" and
# lab_token_view's "trainings"; lpl_run's member `p` (the trainings) is now `tr` in
# src/lab/experiment_run.c and results.c (other structs have a `p` too, so no rule: the
# compiler names any r->p left over).
