# The house warning set (STYLE.md R22), applied to every target we build.
add_compile_options(-Wall -Wextra -Wshadow -Wvla -Wformat=2 -Wstrict-prototypes
                    -Wmissing-prototypes -Wnull-dereference)
if(TN_WERROR)
    add_compile_options(-Werror)
endif()
if(NOT CMAKE_BUILD_TYPE)
    set(CMAKE_BUILD_TYPE RelWithDebInfo)
endif()
if(TN_SANITIZE)
    add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
                        -fno-omit-frame-pointer)
    add_link_options(-fsanitize=address,undefined)
endif()
