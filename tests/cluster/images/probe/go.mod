module earthworm.local/probe

go 1.22
