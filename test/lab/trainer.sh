#!/bin/sh
# The lab's stand-in for a training job (runs as PID 1 in a busybox container): counts steps,
# writes a checkpoint on SIGUSR1 (and keeps going) and on SIGTERM (then exits 0), and resumes from
# $RESUME_FROM_CHECKPOINT (a checkpoint folder or its `step` file) when that is set.
CK=${CHECKPOINT_DIR:-/checkpoints}
STEP=0
R="$RESUME_FROM_CHECKPOINT"
if [ -n "$R" ]; then
  [ -d "$R" ] && R="$R/step"
  if [ -f "$R" ]; then STEP=$(cat "$R"); echo "resumed from step $STEP"; else echo "no checkpoint at $RESUME_FROM_CHECKPOINT, start at step 0"; fi
else
  echo "start at step 0"
fi
ckpt() {
  mkdir -p "$CK"
  echo "$STEP" > "$CK/step.tmp" && mv "$CK/step.tmp" "$CK/step"
  touch "$CK/COMPLETE"
  echo "checkpoint step=$STEP ($1)"
}
trap 'ckpt USR1' USR1
trap 'ckpt TERM; exit 0' TERM
while true; do STEP=$((STEP+1)); sleep 0.2 & wait $!; done
