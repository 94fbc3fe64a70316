module earthworm.local/h2echo

go 1.22
