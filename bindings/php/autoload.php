<?php
// SPDX-License-Identifier: MIT
// Loads the binding from a source tree or an install (no Composer needed):
//   require '/usr/share/php/Cbshm/autoload.php';
// Composer users get the same from composer.json's "autoload".
declare(strict_types=1);

spl_autoload_register(static function (string $class): void {
    if (str_starts_with($class, 'Cbshm\\')) {
        $file = __DIR__ . '/src/' . substr($class, 6) . '.php';
        if (is_file($file)) {
            require $file;
        }
    }
});
