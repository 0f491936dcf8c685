# The 595 training classes of the general model since session 4 (sourced by the training scripts since
# session 11; the earlier scripts in benchmarks/results spell the same list out): 400 procedural seeds + 150 of
# them on a membrane, the 13 SHREC'21 maps and their membrane-bound copies, 5 extra complexes free and bound,
# 8 membrane proteins (5tqq and the other extra complexes stay out: the protocols hold them back).
S=${STRUCTURES:-../shared/structures}  # the device run sets STRUCTURES=.accel/structures
E=$S/maps_10A_extra
M=$S/membrane_10A
STRUCTURES_595=(
  procedural:400:0 procedural:150:0@membrane "$S/maps_10A" "$S/maps_10A@membrane"
  "$E/1f4a.mrc" "$E/3ipm.mrc" "$E/4v7r.mrc" "$E/6qzp.mrc" "$E/8tux.mrc"
  "$E/1f4a.mrc@membrane" "$E/3ipm.mrc@membrane" "$E/4v7r.mrc@membrane" "$E/6qzp.mrc@membrane" "$E/8tux.mrc@membrane"
  "membrane:$M/4pe5.mrc" "membrane:$M/5gjv.mrc" "membrane:$M/5ide.mrc" "membrane:$M/5kxi.mrc"
  "membrane:$M/5tj6.mrc" "membrane:$M/5vai.mrc" "membrane:$M/5wek.mrc" "membrane:$M/6rd4.mrc"
)
