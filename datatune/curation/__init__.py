"""The curation filters, one job per module; `datatune.curate` runs them in order and re-exports them.

    text             normalising, tokenising, 64-bit token and n-gram hashes shared by the filters
    filters          the cheap filters: empty, too long, label outside the set, exact duplicates
    language         script and stop-word language detection, the wrong-language filter
    contamination    word n-gram overlap with the user's examples and eval texts
    near_duplicates  datasketch MinHash LSH over word shingles; embedding group checking (UniGen)

Every filter is `filter_x(rows, ...) -> (kept, Counter({reason: n}))`.
"""
