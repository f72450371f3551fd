module libbert.invalid/bert

go 1.19
