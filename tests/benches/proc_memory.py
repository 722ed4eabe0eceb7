"""Resident memory of a process read from /proc, in KiB: the helper the memory benches share."""

STATUS_FIELDS = ("VmRSS", "RssAnon", "RssFile")
# Pss: a page shared by k processes counts 1/k in each; private pages are the ones no other process maps.
ROLLUP_FIELDS = ("Pss", "Pss_Anon", "Pss_File", "Private_Clean", "Private_Dirty")


def resident_kib(pid, rollup=False):
    """VmRSS / RssAnon / RssFile of /proc/PID/status; with rollup, also the Pss and private pages of smaps_rollup."""
    fields = _fields(f"/proc/{pid}/status", STATUS_FIELDS)
    if rollup:
        fields.update(_fields(f"/proc/{pid}/smaps_rollup", ROLLUP_FIELDS))
    return fields


def _fields(path, wanted):
    fields = {}
    with open(path) as lines:
        for line in lines:
            key, _, value = line.partition(":")
            if key in wanted:
                fields[key] = int(value.split()[0])
    return fields
