# The project's own checks: every text file ends with a newline.
for f in *.txt *.md; do
  [ -f "$f" ] || continue
  [ -z "$(tail -c 1 "$f")" ] || { echo "$f does not end with a newline"; exit 1; }
done
echo "checks passed"
