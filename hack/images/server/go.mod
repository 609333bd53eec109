module kubedebug.local/server

go 1.26
