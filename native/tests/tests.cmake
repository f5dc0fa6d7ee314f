# ctest registrations (included from native/CMakeLists.txt)
