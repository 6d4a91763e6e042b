# One word per concept (issue 25): a placement is where adapters go; a training is
# one placement at one seed. Whole-word identifier renames, re-appliable to merged code:
#   sed -i -E -f /work/rename.sed FILES
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
